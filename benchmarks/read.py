"""Read speed and request counts: refindex against kerchunk + fsspec + zarr 3 and h5py over
s3fs, on the same data, through the same latency/bandwidth-emulating proxy, in one run.

    python benchmarks/read.py                          # everything (several minutes)
    python benchmarks/read.py --rtt 20 --only volume   # one round-trip time, one file
    python benchmarks/read.py --tools refindex,kerchunk --repeat 1

Data (made once in benchmarks/.data): a ≥ 1 GiB float32 volume in 64³ chunks (gzip +
shuffle) and a NetCDF4 climate-like file of 100 × 1024 × 1024 in 32 × 32 chunks (1,024
chunks a plane). Both are uploaded to an embedded S3 server (SeaweedFS on 127.0.0.1); every
client reads through a proxy that adds the round-trip time to each request and caps all
responses together at --bandwidth. Each run is cold (new store, no cache). Printed: seconds,
MB/s of stored bytes, requests, and refindex's speed-up over each competitor, plus the
physical limit max(stored bytes / bandwidth, single-core decode time / cores).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numcodecs  # noqa: E402
import numpy as np  # noqa: E402
import ujson  # noqa: E402
import zarr  # noqa: E402

import refindex  # noqa: E402
from benchmarks.datasets import climate, volume  # noqa: E402
from benchmarks.proxy import CountingProxy  # noqa: E402
from refindex.embedded_s3 import EmbeddedS3  # noqa: E402

BUCKET = "bench"


@dataclass(frozen=True)
class Selection:
    """One read of one variable: ``file`` key, variable name, index expression."""

    name: str
    file: str
    variable: str
    index: tuple


SELECTIONS = [
    Selection("volume full", "volume", "volume", (slice(None),) * 3),
    Selection("volume 2-D slice", "volume", "volume", (160, slice(None), slice(None))),
    Selection("volume region", "volume", "volume",
              (slice(100, 140), slice(300, 360), slice(600, 700))),
    Selection("climate plane", "climate", "tas", (50, slice(None), slice(None))),
    Selection("climate region", "climate", "tas",
              (slice(None), slice(500, 540), slice(500, 540))),
]


@dataclass
class Prepared:
    """A file as every tool sees it: local path, S3 key, our sidecar, kerchunk's refs."""

    path: Path
    key: str
    sidecar: Path
    kerchunk: Path


def prepare(files: dict[str, Path], server: EmbeddedS3, workdir: Path) -> dict[str, Prepared]:
    from kerchunk.hdf import SingleHdf5ToZarr

    from benchmarks.scan import _upload

    prepared = {}
    for name, path in files.items():
        url = f"s3://{BUCKET}/{path.name}"
        _upload(server, path, BUCKET, path.name)
        result = refindex.scan(path, refindex.ScanOptions(url=url))
        sidecar = workdir / f"{name}.refs.json"
        refindex.write_index(result.index, sidecar)
        info = server.client().head_object(Bucket=BUCKET, Key=path.name)
        _stamp_identity(sidecar, info)
        with open(path, "rb") as f:  # given a path, kerchunk would record the path, not url
            refs = SingleHdf5ToZarr(f, url, inline_threshold=0).translate()
        kerchunk = workdir / f"{name}.kerchunk.json"
        kerchunk.write_text(ujson.dumps(refs))
        prepared[name] = Prepared(path, path.name, sidecar, kerchunk)
    return prepared


def _stamp_identity(sidecar: Path, head: dict) -> None:
    """Record the uploaded object's size and ETag, as a scan of the S3 object would."""
    doc = ujson.loads(sidecar.read_text())
    for source in doc["refindex"]["sources"]:
        source["size"] = head["ContentLength"]
        source["etag"] = head["ETag"]
        source.pop("last_modified", None)
    sidecar.write_text(ujson.dumps(doc))


# --- the tools ---------------------------------------------------------------------------

def read_refindex(prepared: Prepared, selection: Selection, endpoint: str,
                  server: EmbeddedS3) -> np.ndarray:
    store = refindex.open_store(prepared.sidecar, endpoint_url=endpoint)
    group = zarr.open_group(store, mode="r", zarr_format=2)
    return group[selection.variable][selection.index]


def read_kerchunk(prepared: Prepared, selection: Selection, endpoint: str,
                  server: EmbeddedS3) -> np.ndarray:
    import fsspec

    fs = fsspec.filesystem(
        "reference", fo=str(prepared.kerchunk), asynchronous=True, remote_protocol="s3",
        remote_options=_s3fs_options(endpoint, server, asynchronous=True))
    store = zarr.storage.FsspecStore(fs, read_only=True, path="")
    group = zarr.open_group(store, mode="r", zarr_format=2)
    return group[selection.variable][selection.index]


def read_h5py_s3fs(prepared: Prepared, selection: Selection, endpoint: str,
                   server: EmbeddedS3) -> np.ndarray:
    import h5py
    import s3fs

    fs = s3fs.S3FileSystem(**_s3fs_options(endpoint, server))
    with fs.open(f"{BUCKET}/{prepared.key}", "rb") as f, h5py.File(f, "r") as h5:
        return h5[selection.variable][selection.index]


def _s3fs_options(endpoint: str, server: EmbeddedS3, asynchronous: bool = False) -> dict:
    options = {"key": server.access_key, "secret": server.secret_key,
               "client_kwargs": {"endpoint_url": endpoint, "region_name": server.region}}
    if asynchronous:
        options["asynchronous"] = True
    return options


TOOLS = {
    "refindex": read_refindex,
    "kerchunk": read_kerchunk,
    "h5py+s3fs": read_h5py_s3fs,
}


# --- the physical limit -------------------------------------------------------------------

def physical_limit(prepared: Prepared, selection: Selection, bandwidth: float) -> tuple:
    """(stored bytes of the chunks touched, seconds to move them, seconds to decode them on
    one core, the limit): max(bytes / bandwidth, decode / cores)."""
    index = refindex.load_index(prepared.sidecar)
    node = index.arrays[selection.variable]
    flats = _touched_chunks(node, selection.index)
    lengths = node.chunks.length[flats]
    pipeline = [numcodecs.get_codec(dict(c)) for c in node.zarray["filters"] or []]
    started = time.perf_counter()
    with open(prepared.path, "rb") as f:
        for flat in flats.tolist():
            f.seek(int(node.chunks.offset[flat]))
            data = f.read(int(node.chunks.length[flat]))
            for codec in reversed(pipeline):
                data = codec.decode(data)
    decode = time.perf_counter() - started
    stored = int(lengths.sum())
    cores = os.cpu_count() or 1
    return stored, stored / bandwidth, decode, max(stored / bandwidth, decode / cores)


def _touched_chunks(node, index: tuple) -> np.ndarray:
    ranges = []
    for sel, size, chunk in zip(index, node.zarray["shape"], node.zarray["chunks"], strict=True):
        if isinstance(sel, int):
            ranges.append([sel // chunk])
        else:
            start, stop, _ = sel.indices(size)
            ranges.append(range(start // chunk, math.ceil(stop / chunk)))
    grid = np.array(np.meshgrid(*ranges, indexing="ij")).reshape(len(ranges), -1).astype(int)
    return np.ravel_multi_index(grid, node.chunks.grid)


# --- the run ------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> None:
    files = {}
    if args.only in (None, "volume"):
        files["volume"] = volume(args.gib)
    if args.only in (None, "climate"):
        files["climate"] = climate()
    selections = [s for s in SELECTIONS if s.file in files and
                  (not args.select or any(part in s.name for part in args.select))]
    tools = [t for t in args.tools.split(",") if t]
    bandwidth = args.bandwidth * 1e6 / 8
    with tempfile.TemporaryDirectory() as scratch, EmbeddedS3(Path(scratch) / "s3") as server:
        os.environ.update({k: v for k, v in server.env().items() if "ENDPOINT" not in k})
        server.create_bucket(BUCKET)
        prepared = prepare(files, server, Path(scratch))
        host, port = server.endpoint_url.removeprefix("http://").split(":")
        with CountingProxy(host, int(port)) as proxy, _faults(proxy.url, args.slowdown) as entry:
            faults = f", {args.slowdown:.0%} of requests answered 503 SlowDown" if (
                args.slowdown) else ""
            for rtt in args.rtt:
                print(f"\n## RTT {rtt} ms, {args.bandwidth:g} Mbit/s{faults}, "
                      f"median of {args.repeat}")
                for selection in selections:
                    _run_selection(proxy, entry, prepared[selection.file], selection, tools,
                                   rtt, bandwidth, args.repeat, server)


@contextlib.contextmanager
def _faults(upstream: str, rate: float):
    """The URL clients use: the counting proxy itself, or a fault-injecting proxy in front of
    it that answers ``rate`` of the requests with S3's 503 SlowDown."""
    if not rate:
        yield upstream
        return
    from tests.fault_proxy import FaultProxy

    with FaultProxy(upstream, rate=rate, faults=("slowdown",), seed=0) as faulty:
        yield faulty.url


def _run_selection(proxy: CountingProxy, entry: str, prepared: Prepared,
                   selection: Selection, tools: list[str], rtt: float, bandwidth: float,
                   repeat: int, server: EmbeddedS3) -> None:
    stored, move, decode, limit = physical_limit(prepared, selection, bandwidth)
    print(f"\n{selection.name}: {stored / 1e6:.1f} MB stored; limit {limit:.2f} s "
          f"(network {move:.2f} s, decode {decode:.2f} s on one core)")
    print(f"  {'tool':11} {'seconds':>8} {'MB/s':>7} {'requests':>8} {'vs refindex':>11} "
          f"{'vs limit':>8}")
    expected, timings = None, {}
    for tool in tools:
        seconds, requests, values = [], [], None
        for _ in range(repeat):
            proxy.configure(delay=rtt / 1000, bandwidth=bandwidth)
            proxy.counters.reset()
            started = time.perf_counter()
            try:
                values = TOOLS[tool](prepared, selection, entry, server)
            except Exception as exc:  # a competitor failing is a result
                print(f"  {tool:11} failed: {type(exc).__name__}: {str(exc)[:120]}")
                values = None
                break
            seconds.append(time.perf_counter() - started)
            requests.append(proxy.counters.requests)
        if values is None:
            continue
        if expected is None:
            expected = values
        elif not _same(expected, values):
            print(f"  {tool:11} VALUES DIFFER")
        timings[tool] = (statistics.median(seconds), statistics.median(requests))
    base = timings.get("refindex", (None,))[0]
    for tool, (secs, reqs) in timings.items():
        ratio = f"{secs / base:10.1f}x" if base else "-"
        print(f"  {tool:11} {secs:8.2f} {stored / 1e6 / secs:7.1f} {reqs:8.0f} {ratio:>11} "
              f"{secs / limit:7.2f}x")


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rtt", type=float, nargs="+", default=[0, 20, 50],
                        help="emulated round-trip times in ms (default: 0 20 50)")
    parser.add_argument("--bandwidth", type=float, default=1000, help="Mbit/s (default 1000)")
    parser.add_argument("--gib", type=float, default=1.0, help="volume size in GiB")
    parser.add_argument("--only", choices=["volume", "climate"])
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--select", nargs="+", metavar="WORDS",
                        help="only selections whose name contains one of these words")
    parser.add_argument("--slowdown", type=float, default=0.0, metavar="RATE",
                        help="answer this fraction of requests with 503 SlowDown, e.g. 0.05")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
