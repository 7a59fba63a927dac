#!/usr/bin/env bash
# Creates the virtual environment (default .venv, or $OML_BOOK_VENV) if missing and installs the
# pinned packages (requirements.txt, under the exact versions of constraints.txt) and oml_helpers into
# it. Skips pip when those files and pyproject.toml are unchanged since the last successful install.
# The other scripts call this first.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${OML_BOOK_VENV:-.venv}
python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
    echo "Creating the virtual environment $venv"
    "$python" -m venv "$venv"
fi

stamp="$venv/.installed-requirements"
want=$(cat requirements.txt constraints.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "Installing the pinned packages into $venv (the first time: about 5 GB, a few minutes)"
    log="$venv/pip-install.log"
    if ! "$venv/bin/pip" install --disable-pip-version-check -r requirements.txt -c constraints.txt -e . >"$log" 2>&1; then
        grep -v "^WARNING: Location" "$log" | tail -40
        echo "pip install failed; the whole log is in $log" >&2
        exit 1
    fi
    echo "$want" >"$stamp"
fi
