#!/usr/bin/env bash
# Headless Chromium for the kedro-viz browser test (tests/test_viz_browser.py), from Debian's
# packages: Playwright drives this executable, so `playwright install` (a download of its own
# browser build) is never needed. Installs only when it is missing and we may (root); otherwise
# says so and leaves the test to skip with that reason.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    echo "[browser] /usr/bin/chromium present: $(/usr/bin/chromium --version 2>/dev/null || true)"
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "[browser] /usr/bin/chromium missing and not root: the browser test will be skipped" >&2
    echo "[browser] install it with: sudo apt-get install -y chromium chromium-driver" >&2
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "[browser] no apt-get here: install Chromium at /usr/bin/chromium by hand; the browser test skips meanwhile" >&2
    exit 0
fi
echo "[browser] installing Debian's chromium and chromium-driver"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
echo "[browser] installed: $(/usr/bin/chromium --version 2>/dev/null || true)"
