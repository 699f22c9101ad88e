#!/usr/bin/env bash
# Regenerate the README's screenshots (docs/screenshots/*.png, desktop 1280 px wide and phone 390x844)
# by running the Chromium page tests that take them. Needs chromium and chromium-driver (apt).
set -euo pipefail
cd "$(dirname "$0")/.."
BOT_UPDATE_SCREENSHOTS=1 python -m pytest -q tests/test_pages_widget.py tests/test_pages_review.py \
  tests/test_pages_agent.py "$@"
ls -l docs/screenshots/
