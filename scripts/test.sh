#!/usr/bin/env bash
# Every test: the helpers' unit tests, the book build (warnings as errors), and every notebook
# re-run by nbval in a fresh kernel and compared with its committed outputs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
venv=${OML_BOOK_VENV:-.venv}
export NO_ALBUMENTATIONS_UPDATE=1 PYTHONHASHSEED=0
exec "$venv/bin/python" -m pytest tests notebooks \
    --nbval --nbval-current-env --nbval-cell-timeout=300 \
    --nbval-sanitize-with tests/nbval_sanitize.cfg \
    -p no:cacheprovider "$@"
