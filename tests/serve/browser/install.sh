#!/usr/bin/env bash
# What tests/serve/test_browser.py needs: Debian's chromium, and zarrita (npm) bundled into one
# ES module the test page imports. Idempotent; the tests skip, saying why, without these.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if ! command -v chromium >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi
cd "$here"
npm install --no-audit --no-fund --silent
# esbuild's own postinstall step may be skipped by npm's install-script policy; its binary
# comes as the @esbuild/<platform> package, which is all the bundling needs.
echo 'export * from "zarrita";' > entry.js
./node_modules/.bin/esbuild entry.js --bundle --format=esm --log-level=warning \
    --outfile=zarrita.bundle.js
rm -f entry.js
