#!/usr/bin/env bash
# Builds the book: installs what it needs, re-executes every notebook in place so that each output
# and figure comes from the current code, rewrites the student edition (student/notebooks/) from
# them, then renders the HTML with warnings treated as errors.
# Pass --no-execute to render the committed outputs as they are.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
venv=${OML_BOOK_VENV:-.venv}
export NO_ALBUMENTATIONS_UPDATE=1 PYTHONHASHSEED=0
if [ "${1:-}" != "--no-execute" ]; then
    "$venv/bin/python" scripts/execute_notebooks.py
    "$venv/bin/python" scripts/make_student_edition.py
fi
rm -rf _build/html
"$venv/bin/jupyter-book" build . -W --keep-going
echo "The book is in $(pwd)/_build/html/index.html"
