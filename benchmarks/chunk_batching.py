"""How many requests and how long one plane of 1,024 small chunks costs through zarr.

Reads ``tas[0]`` (1,024 chunks of 32 × 32 float32, zlib, ~1.4 KB each, contiguous in the
file) of a small NetCDF4-like HDF5 file from SeaweedFS through a counting proxy that adds a
round-trip delay, with zarr-python 3 over ``refindex.open_store``, cold each time, for:
one request per chunk (no planning: the reader before batching), batching and planning at
zarr's default concurrency, and with more ``get``s in flight at once.

    python -m benchmarks.chunk_batching [--delays 0 0.02 0.05]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import zarr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import refindex  # noqa: E402
from benchmarks.proxy import CountingProxy  # noqa: E402
from refindex.demo.embedded_s3 import EmbeddedS3  # noqa: E402

CASES = {
    # name: (ReadOptions changes, zarr async.concurrency or None for the store's
    # zarr_concurrency, as refindex's own reads and refindex.tune_zarr use)
    "one request per chunk (before)": ({"max_request": 1, "cache_size": 0}, 10),
    "batched, zarr's 10 at once": ({"readahead_size": 0}, 10),
    "batched + read-ahead, 10 at once": ({}, 10),
    "batched, 512 at once (default)": ({}, None),
}


def make_file(path: Path) -> np.ndarray:
    """Two 1024 × 1024 planes in (1, 32, 32) zlib chunks; returns plane 0."""
    rng = np.random.default_rng(3)
    data = np.round(280 + rng.normal(0, 2, (2, 1024, 1024)), 1).astype("f4")
    with h5py.File(path, "w") as f:
        f.create_dataset("tas", data=data, chunks=(1, 32, 32), compression="gzip",
                         shuffle=True)
    return data[0]


def read_plane(index, endpoint: str, changes: dict, concurrency: int | None):
    store = refindex.open_store(index, endpoint_url=endpoint, **changes)
    chunks = store.zarr_concurrency if concurrency is None else concurrency
    with zarr.config.set({"async.concurrency": chunks}):
        group = zarr.open_group(store, mode="r", zarr_format=2)
        start = time.perf_counter()
        plane = group["tas"][0]
        seconds = time.perf_counter() - start
    return plane, seconds, store.engine.stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delays", type=float, nargs="+", default=[0.0, 0.02, 0.05],
                        help="emulated round trips, seconds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, EmbeddedS3(Path(scratch) / "s3") as server:
        path = Path(scratch) / "plane.h5"
        expected = make_file(path)
        server.create_bucket("bench")
        url = server.upload(path, "bench", "plane.h5")
        os.environ.update({k: v for k, v in server.env().items() if "ENDPOINT" not in k})
        host, port = server.endpoint_url.removeprefix("http://").split(":")
        with CountingProxy(host, int(port)) as proxy:
            index = refindex.scan(url, read_options=refindex.ReadOptions.from_env().replace(
                endpoint_url=proxy.url)).index
            print(f"{'round trip':>10}  {'case':<36}{'HTTP requests':>14}{'seconds':>9}")
            for delay in args.delays:
                proxy.configure(delay=delay)
                for name, (changes, concurrency) in CASES.items():
                    proxy.counters.reset()
                    plane, seconds, stats = read_plane(index, proxy.url, changes, concurrency)
                    assert np.array_equal(plane, expected), name
                    print(f"{delay * 1000:>8.0f}ms  {name:<36}{proxy.counters.requests:>14}"
                          f"{seconds:>9.3f}   ({stats})")


if __name__ == "__main__":
    main()
