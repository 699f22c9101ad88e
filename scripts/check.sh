#!/usr/bin/env bash
# Every check the project has, in one command: lint, format, types, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
ruff check bot tests scripts
ruff format --check bot tests scripts
mypy bot
lint-imports  # the import rule in pyproject.toml: packages import downwards only
python scripts/check_sizes.py  # modules <= 400 lines, functions <= 60 unless they say why (docs/architecture.md)
python -m pytest "$@"
