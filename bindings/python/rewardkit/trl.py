"""A reward function for TRL's GRPOTrainer (TRL itself is not needed here).

    from rewardkit.trl import reward_func
    trainer = GRPOTrainer(..., reward_funcs=[reward_func("path/to/bundle")])

TRL calls the function with keyword arguments prompts=..., completions=...
(and others, which are ignored) and expects one float per completion.

Two input formats are accepted, per sample:
- standard: the prompt and the completion are strings;
- conversational: the prompt is a list of {"role", "content"} messages and
  the completion a list of messages ending with the assistant's reply.

A conversation is rendered to text the way `rewardkit train` renders
message lists, so that scores match training: each turn as
"User: ...", "Assistant: ..." or "System: ...", turns joined by a blank
line. The completion's last message must have role "assistant"; its content
is the response, and any messages before it in the completion are appended
to the prompt's conversation. Content must be a string.
"""

from .errors import ErrorCode, RewardkitError
from .scorer import Scorer

_LABELS = {"user": "User", "assistant": "Assistant", "system": "System"}


def render_messages(messages):
    """A message list as rewardkit's plain multi-turn text."""
    turns = []
    for i, m in enumerate(messages):
        role, content = _role_content(m, i)
        if role not in _LABELS:
            raise ValueError(
                f"message {i}: unknown role {role!r} (expected user, assistant or system)"
            )
        turns.append(f"{_LABELS[role]}: {content}")
    return "\n\n".join(turns)


def _role_content(m, i):
    if not isinstance(m, dict) or "role" not in m or "content" not in m:
        raise ValueError(f"message {i} must be a dict with 'role' and 'content', found {m!r}")
    if not isinstance(m["content"], str):
        raise ValueError(
            f"message {i}: content must be a string, found {type(m['content']).__name__}"
        )
    return m["role"], m["content"]


def to_pair(prompt, completion):
    """One TRL sample (either format) as a (prompt, response) pair of strings."""
    earlier = []
    if isinstance(completion, str):
        response = completion
    elif isinstance(completion, (list, tuple)) and completion:
        role, response = _role_content(completion[-1], len(completion) - 1)
        if role != "assistant":
            raise ValueError(
                f"the completion's last message must be the assistant's, found role {role!r}"
            )
        earlier = list(completion[:-1])
    else:
        raise ValueError(
            f"a completion must be a string or a non-empty message list, found {completion!r}"
        )
    if isinstance(prompt, str):
        if earlier:
            prompt = "\n\n".join(filter(None, [prompt, render_messages(earlier)]))
        return prompt, response
    if isinstance(prompt, (list, tuple)):
        return render_messages(list(prompt) + earlier), response
    raise ValueError(f"a prompt must be a string or a message list, found {type(prompt).__name__}")


def reward_func(scorer_or_bundle_dir, *, name="rewardkit"):
    """A TRL reward function f(prompts, completions, **kwargs) -> list[float].

    `scorer_or_bundle_dir` is a Scorer (used as is; the caller closes it) or
    a bundle directory (a Scorer is opened and kept by the function, as
    `f.scorer`). `name` becomes `f.__name__`, which TRL logs the reward
    under. All samples are scored in one batched call; no samples give [].
    A malformed sample raises ValueError naming the message.
    """
    scorer = scorer_or_bundle_dir
    if not isinstance(scorer, Scorer):
        scorer = Scorer(scorer_or_bundle_dir)

    def f(prompts, completions, **kwargs):
        if len(prompts) != len(completions):
            raise RewardkitError(
                ErrorCode.LENGTH_MISMATCH,
                f"{len(prompts)} prompts but {len(completions)} completions",
            )
        if not prompts:
            return []
        pairs = [to_pair(p, c) for p, c in zip(prompts, completions)]
        return scorer.score_batch([p for p, _ in pairs], [r for _, r in pairs])

    f.__name__ = f.__qualname__ = name
    f.scorer = scorer
    return f
