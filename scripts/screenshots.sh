#!/usr/bin/env bash
# Regenerate the README's screenshots (docs/screenshots/*.png, desktop 1280 px wide and phone 390x844)
# by running the Chromium page tests that take them. Needs chromium and chromium-driver (apt).
set -euo pipefail
cd "$(dirname "$0")/.."
BOT_UPDATE_SCREENSHOTS=1 python -m pytest -q tests/web/test_widget_page.py tests/web/test_review_pages.py \
  tests/web/test_agent_page.py tests/web/test_versions_page.py tests/web/test_model_panel.py \
  tests/web/test_webhooks_page.py tests/web/test_off_topic_card.py tests/web/test_sentiment_card.py \
  tests/web/test_bootstrap_page.py "$@"
ls -l docs/screenshots/
