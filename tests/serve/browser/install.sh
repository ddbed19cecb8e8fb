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
# neuroglancer's client, as the PyPI package ships it (the wheel only: none of its Python
# dependencies are needed). It is served under .../v/<token>/, the path it expects.
if [ ! -f neuroglancer/v/refindex/index.html ]; then
    wheels="$(mktemp -d)"
    "${PYTHON:-python}" -m pip download -q --no-deps 'neuroglancer>=2.40' -d "$wheels"
    "${PYTHON:-python}" - "$wheels" <<'PY'
import pathlib, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("neuroglancer-*.whl"))
target = pathlib.Path("neuroglancer/v/refindex")
prefix = "neuroglancer/static/client/"
with zipfile.ZipFile(wheel) as archive:
    for name in archive.namelist():
        if name.startswith(prefix) and not name.endswith((".map", "/")):
            path = target / name[len(prefix):]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(archive.read(name))
PY
    rm -rf "$wheels"
fi
