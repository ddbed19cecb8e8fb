"""Read speed and request counts: refindex against kerchunk + fsspec + zarr 3 and h5py over
s3fs, on the same data, through the same latency/bandwidth-emulating proxy, in one run.

    python benchmarks/read.py                          # everything (several minutes)
    python benchmarks/read.py --rtt 20 --only volume   # one round-trip time, one file
    python benchmarks/read.py --tools refindex,kerchunk --repeat 1

Tools: ``refindex`` (``zarr.open_group(refindex.open_store(...))``: zarr's chunk path),
``refindex-xr`` (``xr.open_dataset(sidecar, engine="refindex")``: refindex's region reader),
``kerchunk`` (its references through fsspec and zarr), ``h5py+s3fs``.

Data (made once in benchmarks/.data): a ≥ 1 GiB float32 volume in 64³ chunks (gzip +
shuffle) and a NetCDF4 climate-like file of 100 × 1024 × 1024 in 32 × 32 chunks (1,024
chunks a plane). Both are uploaded to an embedded S3 server (SeaweedFS on 127.0.0.1); every
client reads through a proxy that adds the round-trip time to each request and caps all
responses together at --bandwidth. Each run is cold (new store, no cache). Printed: seconds,
MB/s of stored bytes, requests, and refindex's speed-up over each competitor, plus the
physical limit: one round trip + max(stored bytes / bandwidth, single-core decode time /
cores).

Reads of local files (no network: per-chunk overhead, decode on every core, peak memory):
``benchmarks/read_local.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
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
from benchmarks.s3_link import s3fs_options  # noqa: E402
from refindex.demo.embedded_s3 import EmbeddedS3  # noqa: E402
from refindex.index import Source  # noqa: E402
from refindex.io.resolver import forget_resolutions  # noqa: E402
from refindex.store.tuning import zarr_concurrency  # noqa: E402

BUCKET = "bench"
ARCHIVE_USER, ARCHIVE_PASSWORD = "reader", "open-sesame"


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
    """A file as every tool sees it: local path, S3 key, and per route ("s3", "archive") our
    sidecar and kerchunk's references naming the file's URL on that route."""

    path: Path
    key: str
    sidecars: dict[str, Path]
    kerchunk: dict[str, Path]


@dataclass
class Route:
    """How clients reach the data: ``s3`` (S3 API through ``endpoint``) or ``archive`` (HTTP
    URLs of the redirecting archive at ``archive_url``, which logs in and presigns)."""

    name: str
    endpoint: str
    archive_url: str = ""
    netrc: Path | None = None

    def url(self, key: str) -> str:
        if self.name == "archive":
            return f"{self.archive_url}/data/{BUCKET}/{key}"
        return f"s3://{BUCKET}/{key}"


def prepare(files: dict[str, Path], server: EmbeddedS3, workdir: Path,
            routes: list[Route]) -> dict[str, Prepared]:
    from kerchunk.hdf import SingleHdf5ToZarr

    from benchmarks.scan import _upload

    prepared = {}
    for name, path in files.items():
        _upload(server, path, BUCKET, path.name)
        head = server.client().head_object(Bucket=BUCKET, Key=path.name)
        index = refindex.scan(path).index
        sidecars, kerchunks = {}, {}
        for route in routes:
            url = route.url(path.name)
            # Identity as a scan of the uploaded object would record it.
            index.sources = [Source(url, head["ContentLength"], head["ETag"])]
            sidecars[route.name] = workdir / f"{name}.{route.name}.refs.json"
            refindex.write_index(index, sidecars[route.name])
            with open(path, "rb") as f:  # given a path, kerchunk would record the path
                refs = SingleHdf5ToZarr(f, url, inline_threshold=0).translate()
            kerchunks[route.name] = workdir / f"{name}.{route.name}.kerchunk.json"
            kerchunks[route.name].write_text(ujson.dumps(refs))
        prepared[name] = Prepared(path, path.name, sidecars, kerchunks)
    return prepared


# --- the tools ---------------------------------------------------------------------------

def read_refindex(prepared: Prepared, selection: Selection, route: Route,
                  server: EmbeddedS3) -> np.ndarray:
    store = refindex.open_store(prepared.sidecars[route.name], endpoint_url=route.endpoint)
    group = zarr.open_group(store, mode="r", zarr_format=2)
    # The store's chunks asked for at once, as refindex's own reads (and tune_zarr) do;
    # only for this read: the other tools keep zarr's setting.
    with zarr_concurrency(store.zarr_concurrency):
        return group[selection.variable][selection.index]


def read_refindex_xarray(prepared: Prepared, selection: Selection, route: Route,
                         server: EmbeddedS3) -> np.ndarray:
    """refindex's front door for scientists: xr.open_dataset(engine="refindex"), whose
    integer and slice selections go through refindex's region reader, not zarr's chunk path
    (raw values, as the zarr readers give them)."""
    import xarray as xr

    with xr.open_dataset(prepared.sidecars[route.name], engine="refindex", cache=False,
                         mask_and_scale=False, decode_times=False,
                         storage_options={"endpoint_url": route.endpoint}) as ds:
        return ds[selection.variable][selection.index].values


def read_kerchunk(prepared: Prepared, selection: Selection, route: Route,
                  server: EmbeddedS3) -> np.ndarray:
    import fsspec

    if route.name == "archive":  # fsspec's HTTP: aiohttp follows the redirects, keeps cookies
        remote = {"protocol": "http", "options": {
            "asynchronous": True, "get_client": _archive_session}}
    else:
        remote = {"protocol": "s3",
                  "options": s3fs_options(route.endpoint, server, asynchronous=True)}
    fs = fsspec.filesystem(
        "reference", fo=str(prepared.kerchunk[route.name]), asynchronous=True,
        remote_protocol=remote["protocol"], remote_options=remote["options"])
    store = zarr.storage.FsspecStore(fs, read_only=True, path="")
    group = zarr.open_group(store, mode="r", zarr_format=2)
    return group[selection.variable][selection.index]


async def _archive_session(**kwargs):
    """The aiohttp session an fsspec user would configure for the archive: HTTP Basic
    credentials, and a cookie jar that keeps cookies of IP-address hosts too (aiohttp's default
    drops them, which would send fsspec round the archive's login in circles)."""
    import warnings

    import aiohttp

    with warnings.catch_warnings():  # aiohttp 3.12 deprecates ``auth``; still what users write
        warnings.simplefilter("ignore", DeprecationWarning)
        return aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            auth=aiohttp.BasicAuth(ARCHIVE_USER, ARCHIVE_PASSWORD), **kwargs)


def read_h5py_s3fs(prepared: Prepared, selection: Selection, route: Route,
                   server: EmbeddedS3) -> np.ndarray:
    import h5py
    import s3fs

    if route.name != "s3":
        raise NotImplementedError("s3fs reads S3 only")
    fs = s3fs.S3FileSystem(**s3fs_options(route.endpoint, server))
    with fs.open(f"{BUCKET}/{prepared.key}", "rb") as f, h5py.File(f, "r") as h5:
        return h5[selection.variable][selection.index]


TOOLS = {
    "refindex": read_refindex,
    "refindex-xr": read_refindex_xarray,
    "kerchunk": read_kerchunk,
    "h5py+s3fs": read_h5py_s3fs,
}


# --- the physical limit -------------------------------------------------------------------

def physical_limit(prepared: Prepared, selection: Selection, bandwidth: float,
                   rtt: float = 0.0) -> tuple:
    """(stored bytes of the chunks touched, seconds to move them, seconds to decode them on
    one core, the limit): one round trip (``rtt`` seconds: no read is faster than one
    request) plus max(bytes / bandwidth, decode / cores)."""
    index = refindex.load_index(next(iter(prepared.sidecars.values())))
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
    return stored, stored / bandwidth, decode, rtt + max(stored / bandwidth, decode / cores)


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
    # Cold s3fs clients are left to the garbage collector, which asyncio reports as
    # "Unclosed client session" on every run: noise, not a result.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    files = {}
    if args.only in (None, "volume"):
        files["volume"] = volume(args.gib)
    if args.only in (None, "climate"):
        files["climate"] = climate()
    selections = [s for s in SELECTIONS if s.file in files and
                  (not args.select or any(part in s.name for part in args.select))]
    tools = [t for t in args.tools.split(",") if t]
    if "refindex-xr" in tools:  # imports stay out of the clock, as for every tool
        import xarray  # noqa: F401

        import refindex.xarray.backend  # noqa: F401
    bandwidth = args.bandwidth * 1e6 / 8
    with contextlib.ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        server = stack.enter_context(EmbeddedS3(scratch / "s3"))
        os.environ.update({k: v for k, v in server.env().items() if "ENDPOINT" not in k})
        server.create_bucket(BUCKET)
        host, port = server.endpoint_url.removeprefix("http://").split(":")
        proxy = stack.enter_context(CountingProxy(host, int(port)))
        entry = stack.enter_context(_faults(proxy.url, args.slowdown))
        routes, front, archive = [], None, None
        if "s3" in args.via:
            routes.append(Route("s3", entry))
        if "archive" in args.via:
            archive, front = stack.enter_context(_archive(server, entry))
            routes.append(Route("archive", entry, front.url, _netrc(scratch)))
            os.environ["NETRC"] = str(routes[-1].netrc)
        prepared = prepare(files, server, scratch, routes)
        faults = f", {args.slowdown:.0%} of requests answered 503 SlowDown" if (
            args.slowdown) else ""
        for route in routes:
            for rtt in args.rtt:
                print(f"\n## {route.name}: RTT {rtt} ms, {args.bandwidth:g} Mbit/s{faults}, "
                      f"median of {args.repeat}")
                proxies = [proxy] + ([front] if route.name == "archive" else [])
                for selection in selections:
                    _run_selection(proxies, route, archive, prepared[selection.file],
                                   selection, tools, rtt, bandwidth, args.repeat, server)


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


@contextlib.contextmanager
def _archive(server: EmbeddedS3, s3_entry: str):
    """The redirecting archive of the tests (login, cookie, redirect to a presigned URL that
    goes through ``s3_entry``), behind its own counting proxy with the same round trip."""
    from tests.archive_server import ArchiveServer
    from tests.http_server import serve_in_thread

    archive = ArchiveServer(server, username=ARCHIVE_USER, password=ARCHIVE_PASSWORD,
                            lifetime=3600, presigner=server.client(s3_entry))
    with serve_in_thread(archive.app(), "bench-archive") as port:
        archive.port = port
        with CountingProxy("127.0.0.1", port) as front:
            yield archive, front


def _netrc(scratch: Path) -> Path:
    """A netrc file with the archive's credentials, as an Earthdata user keeps one."""
    path = scratch / "netrc"
    path.write_text(f"machine 127.0.0.1 login {ARCHIVE_USER} password {ARCHIVE_PASSWORD}\n")
    path.chmod(0o600)
    return path


def _run_selection(proxies: list[CountingProxy], route: Route, archive, prepared: Prepared,
                   selection: Selection, tools: list[str], rtt: float, bandwidth: float,
                   repeat: int, server: EmbeddedS3) -> None:
    stored, move, decode, limit = physical_limit(prepared, selection, bandwidth, rtt / 1000)
    print(f"\n{selection.name}: {stored / 1e6:.1f} MB stored; limit {limit:.2f} s "
          f"(one round trip {rtt / 1000:.2f} s + max(network {move:.2f} s, decode "
          f"{decode:.2f} s on one core / cores))")
    extra = f" {'login+redir':>11}" if archive else ""
    print(f"  {'tool':11} {'seconds':>8} {'MB/s':>7} {'requests':>8}{extra} "
          f"{'vs refindex':>11} {'vs limit':>8}")
    expected, timings = None, {}
    for tool in tools:
        if route.name != "s3" and tool == "h5py+s3fs":
            continue
        seconds, requests, handshakes, values = [], [], [], None
        for _ in range(repeat):
            for proxy in proxies:
                # The round trip is emulated once per request; bandwidth caps data (S3) only.
                proxy.configure(delay=rtt / 1000,
                                bandwidth=bandwidth if proxy is proxies[0] else None)
                proxy.counters.reset()
            if archive:
                archive.reset_counters()
            forget_resolutions()  # cold: every tool logs in and resolves anew
            started = time.perf_counter()
            try:
                values = TOOLS[tool](prepared, selection, route, server)
            except Exception as exc:  # a competitor failing is a result
                print(f"  {tool:11} failed: {type(exc).__name__}: {str(exc)[:120]}")
                values = None
                break
            seconds.append(time.perf_counter() - started)
            requests.append(sum(p.counters.requests for p in proxies))
            if archive:
                handshakes.append(archive.logins + archive.redirects + archive.login_redirects)
        if values is None:
            continue
        if expected is None:
            expected = values
        elif not _same(expected, values):
            print(f"  {tool:11} VALUES DIFFER")
        timings[tool] = (statistics.median(seconds), statistics.median(requests),
                         statistics.median(handshakes) if handshakes else None)
    base = timings.get("refindex", (None,))[0]
    for tool, (secs, reqs, shakes) in timings.items():
        ratio = f"{secs / base:10.1f}x" if base else "-"
        extra = f" {shakes:11.0f}" if shakes is not None else ""
        print(f"  {tool:11} {secs:8.2f} {stored / 1e6 / secs:7.1f} {reqs:8.0f}{extra} "
              f"{ratio:>11} {secs / limit:7.2f}x")


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
    parser.add_argument("--via", nargs="+", choices=["s3", "archive"], default=["s3", "archive"],
                        help="read directly from S3, through the redirecting archive (login + "
                             "redirect to presigned URLs), or both (default)")
    parser.add_argument("--slowdown", type=float, default=0.0, metavar="RATE",
                        help="answer this fraction of requests with 503 SlowDown, e.g. 0.05")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
