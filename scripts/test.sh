#!/usr/bin/env bash
# Every test: the helpers' unit tests, the book build (warnings as errors), the rendered book in
# headless Chromium (tests/test_browser.py), and every notebook re-run by nbval in a fresh kernel and
# compared with its committed outputs. Extra arguments go to pytest (e.g. -k browser).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
bash scripts/setup_browser.sh
venv=${OML_BOOK_VENV:-.venv}
export NO_ALBUMENTATIONS_UPDATE=1 PYTHONHASHSEED=0
exec "$venv/bin/python" -m pytest tests notebooks \
    --nbval --nbval-current-env --nbval-cell-timeout=300 \
    --nbval-sanitize-with tests/nbval_sanitize.cfg \
    --durations=12 -p no:cacheprovider "$@"
