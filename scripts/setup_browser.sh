#!/usr/bin/env bash
# What the browser tests (tests/test_browser.py) need beyond the Python packages: Debian's chromium
# (Playwright drives it; its own browser download is not used) and axe-core from the npm registry
# (tests/browser, pinned by package-lock.json). Idempotent; never fails the test command: where
# something cannot be installed it says so, and the tests that need it skip with a message.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ -n "${OML_BOOK_CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    :
elif [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian's chromium for the browser tests (apt-get, about 300 MB)"
    log=$(mktemp)
    if ! { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; } >"$log" 2>&1; then
        tail -20 "$log"
        echo "setup_browser: could not install chromium; the browser tests will be skipped" >&2
    fi
    rm -f "$log"
else
    echo "setup_browser: chromium is not installed and this is not root with apt-get;" \
        "the browser tests will be skipped (install chromium, or set OML_BOOK_CHROMIUM)" >&2
fi

if [ ! -f tests/browser/node_modules/axe-core/axe.min.js ]; then
    if command -v npm >/dev/null 2>&1; then
        echo "Installing axe-core for the accessibility scan (npm ci in tests/browser)"
        if ! (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error); then
            echo "setup_browser: npm ci failed; the accessibility scan will be skipped" >&2
        fi
    else
        echo "setup_browser: npm is not installed; the accessibility scan will be skipped" >&2
    fi
fi
exit 0
