"""rewardkit: score (prompt, response) pairs with embedded reward models.

    import rewardkit
    with rewardkit.Scorer("path/to/bundle") as scorer:
        print(scorer.score("What is 2 + 2?", "4"))

The library, librewardkit, is loaded on first use: see rewardkit._loader
for where it is looked for (REWARDKIT_LIB first).
"""

from ._ffi import VERSION as __version__
from ._loader import LibraryNotFoundError
from .errors import ErrorCode, RewardkitError, ScorerClosedError
from .scorer import Scorer, version

__all__ = [
    "ErrorCode",
    "LibraryNotFoundError",
    "RewardkitError",
    "Scorer",
    "ScorerClosedError",
    "__version__",
    "version",
]
