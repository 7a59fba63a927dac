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
# Play another CPU: the committed outputs were made with this machine's native kernels, and these two
# settings make torch use other ones (ATen's generic kernels, oneDNN without AVX2/AVX-512), which
# change a training run's last digits as a different processor would. Every notebook must still match
# its committed outputs and stay inside the ranges its text states. (oneDNN's SSE41 would differ more
# but trains six times slower; tests/test_book_models.py runs the shipped model with it.)
export ATEN_CPU_CAPABILITY=${ATEN_CPU_CAPABILITY:-default} ONEDNN_MAX_CPU_ISA=${ONEDNN_MAX_CPU_ISA:-AVX}
exec "$venv/bin/python" -m pytest tests notebooks \
    --nbval --nbval-current-env --nbval-cell-timeout=300 \
    --nbval-sanitize-with tests/nbval_sanitize.cfg \
    --durations=12 -p no:cacheprovider "$@"
