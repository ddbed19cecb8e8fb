"""The routes of benchmarks/serve.py: how each server is started (``refindex serve``,
xpublish) or each direct read addressed (objects, ranges of the tars), each chunk's URL, and
the check of served values against the local store."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import zarr

BUCKET = "bench"
CHUNK = 64
NAME = "cells"

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, timeout: float = 120.0) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server stopped (exit {process.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{url}: {exc.code} {exc.read()[:500]!r}") from exc
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url}: no answer in {timeout} s")


def start_refindex(sidecar: Path, proxy_url: str, env: dict, options: list[str],
                   readahead: bool) -> tuple:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", "from refindex.cli import main; main()", "serve", "-q",
         "--transcode", "off", "--port", str(port), "--endpoint-url", proxy_url,
         *(["--readahead"] if readahead else []), *(f"-O{o}" for o in options),
         f"{NAME}={sidecar}"], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/healthz", process)
    except BaseException:
        stop(process)
        raise
    return process, lambda c: f"{base}/{NAME}/0/{c[0]}/{c[1]}/{c[2]}", f"{base}/{NAME}"


# xpublish-zarr serves Zarr v3: the stored Blosc (a v2 codec object in the encoding) is said
# as v3's blosc codec with the same settings.
_XPUBLISH = """
import sys
import xarray as xr, xpublish, zarr
from xpublish_zarr import ZarrPlugin
endpoint, key, secret, port = sys.argv[1:5]
ds = xr.open_zarr("s3://bench/objects", consolidated=True, storage_options={
    "key": key, "secret": secret, "client_kwargs": {"endpoint_url": endpoint}})
for variable in ds.data_vars.values():
    variable.encoding.pop("compressor", None)
    variable.encoding.pop("filters", None)
    variable.encoding["compressors"] = [zarr.codecs.BloscCodec(
        cname="zstd", clevel=5, shuffle="bitshuffle", typesize=2)]
xpublish.Rest({"cells": ds}, plugins={"zarr": ZarrPlugin()}).serve(
    host="127.0.0.1", port=int(port), log_level="warning")
"""


def start_xpublish(proxy_url: str, server, env: dict, path: str) -> tuple:
    port = free_port()
    env = {**env, "PYTHONPATH": os.pathsep.join([path, env.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, "-c", _XPUBLISH, proxy_url, server.access_key,
                                server.secret_key, str(port)], env=env)
    base = f"http://127.0.0.1:{port}/datasets/{NAME}/zarr"
    try:
        wait_for(f"{base}/zarr.json", process)
    except BaseException:
        stop(process)
        raise
    return process, lambda c: f"{base}/0/c/{c[0]}/{c[1]}/{c[2]}", base


def direct_urls(server, proxy_url: str, grid: tuple[int, ...]) -> dict:
    client = server.client(proxy_url)
    return {(z, y, x): client.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": f"objects/0/{z}/{y}/{x}"},
        ExpiresIn=3600)
        for z in range(grid[0]) for y in range(grid[1]) for x in range(grid[2])}


def tar_ranges(server, proxy_url: str, index, grid: tuple[int, ...]) -> dict:
    """Per chunk of level 0, a presigned URL of its tar part and the Range of its bytes."""
    client = server.client(proxy_url)
    node = index.arrays["0"]
    urls, found = {}, {}
    for z in range(grid[0]):
        for y in range(grid[1]):
            for x in range(grid[2]):
                ref = node.chunks.get(node.chunks.flat_index((z, y, x)))
                source = index.sources[ref.source].url
                if source not in urls:
                    bucket, key = source.removeprefix("s3://").split("/", 1)
                    urls[source] = client.generate_presigned_url(
                        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=3600)
                found[(z, y, x)] = (urls[source], {
                    "Range": f"bytes={ref.offset}-{ref.offset + ref.length - 1}"})
    return found


def check(base: str, reference: zarr.Array, chunks: list, zarr_format: int) -> None:
    """Chunks read by zarr from the served store equal the local store's."""
    served = zarr.open_group(base, mode="r", zarr_format=zarr_format)["0"]
    for z, y, x in chunks:
        region = tuple(slice(c * CHUNK, (c + 1) * CHUNK) for c in (z, y, x))
        if not np.array_equal(served[region], reference[region]):
            raise AssertionError(f"{base}: chunk {(z, y, x)} differs from the local store")


def stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
