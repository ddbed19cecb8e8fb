"""A real browser reads arrays from ``refindex serve``: headless Chromium opens a page served
from another origin (so CORS is exercised), the page reads arrays with zarrita, and the
values equal h5py's — a gzip (zlib) array served as stored, and HDF5 filter pipelines
(shuffle + deflate, lzf, scale-offset, blosc) re-encoded for the browser.

Neuroglancer (the client the PyPI package ships) opens served arrays too and fetches every
chunk in view; its screenshot is kept as an artifact.

Needs Debian's chromium, zarrita from npm and neuroglancer's client from PyPI: the tests
run ``tests/serve/browser/install.sh`` where they are missing, and skip, saying why, only
where it cannot install them."""

from __future__ import annotations

import base64
import functools
import html
import http.server
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import h5py
import numpy as np
import pytest

from refindex.serve.app import STATE
from tests.serve.conftest import dataset, serving

BROWSER_DIR = Path(__file__).parent / "browser"
BUNDLE = BROWSER_DIR / "zarrita.bundle.js"
NEUROGLANCER = BROWSER_DIR / "neuroglancer" / "v" / "refindex" / "index.html"
INSTALL = BROWSER_DIR / "install.sh"


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module", autouse=True)
def browser_tools() -> None:
    """Debian's chromium, zarrita and neuroglancer's client, installed once by the project's
    own script where they are missing; the tests skip, saying why, only where that fails
    (no root for apt, no package registry)."""
    if _chromium() and BUNDLE.exists() and NEUROGLANCER.exists():
        return
    try:
        subprocess.run(["bash", str(INSTALL)], check=True, capture_output=True, text=True,
                       timeout=1200, env={**os.environ, "PYTHON": sys.executable})
    except subprocess.CalledProcessError as exc:
        last = (exc.stderr or exc.stdout or "").strip().splitlines()[-1:] or ["no output"]
        pytest.skip(f"{INSTALL.name} could not install the browser tools: {last[0]}")
    except (subprocess.TimeoutExpired, OSError) as exc:
        pytest.skip(f"{INSTALL.name} could not install the browser tools: {exc}")

ARRAYS = {"standard": ("gzip", "shuffle_gzip", "zstd", "blosc_lz4", "plain"),
          "filters": ("lzf_mixed", "scaleoffset_float", "shuffle_gzip_fletcher", "nbit")}


@pytest.fixture(scope="module")
def page_origin() -> Iterator[str]:
    """``tests/serve/browser/`` served on its own port: the page's origin, not the data's."""
    handler = functools.partial(_QuietHandler, directory=str(BROWSER_DIR))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".js": "text/javascript"}

    def log_message(self, *args) -> None:
        pass


def read_in_browser(page_origin: str, urls: list[str], tmp_path: Path) -> dict:
    """What the page read of ``urls`` (each an array's URL), by URL."""
    page = f"{page_origin}/read.html?arrays={quote('|'.join(urls), safe='')}"
    for _ in range(3):
        result = subprocess.run(
            [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=30000",
             "--dump-dom", page],
            capture_output=True, text=True, timeout=120)
        found = re.search(r'<pre id="result">(.*?)</pre>', result.stdout, re.S)
        assert found, f"no result in the page; chromium said: {result.stderr[-2000:]}"
        text = html.unescape(found.group(1))
        # Virtual time may run out before real responses arrive on a loaded machine: the
        # page is then dumped still "pending" and is loaded again.
        if text != "pending":
            break
    assert text != "pending", f"the page did not finish: {result.stderr[-2000:]}"
    values = json.loads(text)
    assert "error" not in values, values["error"]
    return values


def test_zarrita_in_chromium_reads_raw_and_transcoded_arrays_exactly(files, page_origin,
                                                                      tmp_path):
    with serving(dataset("standard", files["standard"]),
                 dataset("filters", files["filters"])) as server:
        urls = {f"{server.url}/{name}/{array}": (name, array)
                for name, arrays in ARRAYS.items() for array in arrays}
        values = read_in_browser(page_origin, list(urls), tmp_path)
    for url, (name, array) in urls.items():
        with h5py.File(files[name].source) as f:
            expected = f[array][...]
        got = values[url]
        assert got["shape"] == list(expected.shape), url
        native = expected.astype(expected.dtype.newbyteorder("="))
        actual = np.frombuffer(base64.b64decode(got["data"]), native.dtype)
        assert actual.tobytes() == native.tobytes(), f"{url}: values differ"


def test_without_cors_headers_the_browser_may_not_read(files, page_origin, tmp_path):
    with (serving(dataset("standard", files["standard"]), cors_origins=()) as server,
          pytest.raises(AssertionError, match="Failed to fetch")):
        read_in_browser(page_origin, [f"{server.url}/standard/gzip"], tmp_path)


VIEWED = {"standard": "gzip", "filters": "shuffle_gzip"}  # zlib as stored; re-encoded gzip


class _Requests(logging.Handler):
    """The (path, status) of every request the server's access log records."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seen: list[tuple[str, int]] = []

    def emit(self, record: logging.LogRecord) -> None:
        found = re.search(r'"[A-Z]+ (\S+) HTTP/[\d.]+" (\d{3})', record.getMessage())
        if found:
            self.seen.append((found.group(1), int(found.group(2))))


@pytest.fixture
def access_log() -> Iterator[_Requests]:
    logger = logging.getLogger("refindex.serve.access")
    handler, level = _Requests(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_neuroglancer_requests_and_renders_every_chunk(files, page_origin, access_log,
                                                      tmp_path):
    """Neuroglancer (its zarr2:// source) opens a raw and a re-encoded array and fetches
    every chunk in view, each answered 200. The screenshot is kept for people to look at:
    in $REFINDEX_TEST_ARTIFACTS when set, else in the test's temporary directory."""
    artifacts = Path(os.environ.get("REFINDEX_TEST_ARTIFACTS") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    screenshot = artifacts / "neuroglancer.png"
    with serving(dataset("standard", files["standard"]),
                 dataset("filters", files["filters"])) as server:
        layers = [{"type": "image", "name": f"{name}/{array}",
                   "source": f"zarr2://{server.url}/{name}/{array}"}
                  for name, array in VIEWED.items()]
        state = quote(json.dumps({"layers": layers, "layout": "xy", "crossSectionScale": 0.1}),
                      safe="")
        subprocess.run(
            [_chromium(), "--headless", "--no-sandbox", "--use-angle=swiftshader",
             "--enable-unsafe-swiftshader", "--no-first-run", "--window-size=1000,700",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=20000",
             f"--screenshot={screenshot}", f"{page_origin}/neuroglancer/v/refindex/#!{state}"],
            capture_output=True, timeout=120, check=True)
        indexes = {name: server.app[STATE].datasets[name].index for name in VIEWED}
    answered = dict(access_log.seen)
    for name, array in VIEWED.items():
        keys = [key for key, _ in indexes[name].arrays[array].present_keys()]
        assert keys
        for key in keys:
            assert answered.get(f"/{name}/{key}") == 200, f"{name}/{key}: not read"
    assert not [seen for seen in access_log.seen if seen[1] >= 500]
    # A blank canvas compresses to a few KB; one showing the arrays does not.
    assert screenshot.stat().st_size > 8000, f"{screenshot}: nothing rendered?"
