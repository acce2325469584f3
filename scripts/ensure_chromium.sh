#!/usr/bin/env bash
# Debian's headless Chromium for the debugging page's browser test. Installs it when missing and this
# user may (root with apt-get); otherwise says why, and that test skips.
set -uo pipefail
command -v chromium >/dev/null && exit 0
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  { apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }; } >/dev/null 2>&1 \
    && exit 0
fi
echo "chromium is not installed (apt-get install chromium); the debug page's browser test will skip" >&2
exit 0
