#!/usr/bin/env bash
# Regenerate every binding's low-level layer from include/rewardkit.h
# (`make bindings`), or with --check fail on any difference (CI).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
status=0
for lang in go java python; do
    python3 "bindings/$lang/generate.py" "$@" || status=1
done
exit "$status"
