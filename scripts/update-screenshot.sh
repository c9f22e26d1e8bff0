#!/usr/bin/env bash
# Updates docs/status-page-rolled-back.png (the README's screenshot of the status page after
# a rollback) from the real page: runs the browser test of tests/e2e/test_status_page.py
# with UPDATE_DOCS_SCREENSHOT=1. The test command (scripts/test.sh) writes the same picture
# to artifacts/ only, so running the tests leaves the tree clean.
# Usage: bash scripts/update-screenshot.sh   (needs scripts/setup.sh's tools and Chromium)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=/dev/null
source .tools/env.sh
UPDATE_DOCS_SCREENSHOT=1 python -m pytest -q -p no:cacheprovider \
  "tests/e2e/test_status_page.py::test_the_page_shows_a_live_rollout_and_a_rollback_in_a_real_browser"
echo "updated docs/status-page-rolled-back.png"
