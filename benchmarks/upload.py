"""Upload and read-back of a Zarr store of many small chunk objects: object by object with
s3fs against ``refindex pack --upload``, then native Zarr over the objects against refindex
over the packed files; same data, same emulated link, one run.

    python benchmarks/upload.py                         # 100,000 chunks, 20 ms, 1 Gbit/s
    python benchmarks/upload.py --chunks 10000 --repeat 3
    python benchmarks/upload.py --skip-native --skip-reads --target-size 268435456

Data (made once in benchmarks/.data by benchmarks/microscopy.py, 3.5 minutes): an
OME-Zarr-like Zarr v2 pyramid of a uint16 fluorescence volume written by zarr, in 32³ chunks
(Blosc zstd + bit-shuffle) of 20-30 KB each. 100,000 level-0 chunks (800 × 2,048 × 2,048)
and two coarser levels make 117,504 chunk files, 3.0 GB, 7.7 GB decoded. Why 32³ and not
64³: a 64³ uint16 chunk of realistically noisy fluorescence compresses to 150-250 KB, so
100,000 of them would be 20 GB stored and 52 GB decoded, too much for this benchmark's
machine (2 cores, tens of GB of disk to spare) and time; 32³ keeps objects of tens of KB
and the store at a few GB.

Everything runs against an embedded S3 server (SeaweedFS on 127.0.0.1) through a proxy of its
own process that adds --rtt to each request and caps each direction at --bandwidth. Every run
is cold (new clients; the local store is in the page cache for every tool alike).

Uploads: (a) s3fs ``put(recursive=True)``, ``batch_size`` files at once over as many
connections, as s5cmd-style tools do (on 10,000 chunks 256 did better than 64 and 512;
s3fs and SeaweedFS spend about 1.2 and 0.8 ms of CPU per object, so a faster link would not
help it); (b) ``refindex.pack.pack`` with ``upload_to``, end to end (tars written to a scratch
folder, each uploaded while it is packed), with the time packing took and the span and
rate of its uploads; (c) ``refindex.upload.upload_files`` of the packed tars: the uploader on
its own. Printed: seconds, MB/s of the store's bytes and of the bytes that crossed the link,
requests, objects, speed-up over (a), and share of the link.

Reads of what was uploaded: zarr 3 over the objects (FsspecStore over s3fs, at its best:
no HEAD before each GET, 64 chunks at once over 64 connections, which did as well as 256 or
1,024) and refindex over the packed tars (``refindex.open_store``): every level in full (in
slabs of --slab-mib decoded, as a volume larger than memory is processed) and a small
region; values checked against the local store, whose read by zarr is printed as the floor.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import shutil
import statistics
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import zarr  # noqa: E402

import refindex  # noqa: E402
from benchmarks.microscopy import CHUNK, StoreFiles, microscopy  # noqa: E402
from benchmarks.proxy import CountingProxy  # noqa: E402
from benchmarks.s3_link import Measured, measure, s3_behind_link, s3fs_options  # noqa: E402
from refindex.demo.embedded_s3 import EmbeddedS3  # noqa: E402
from refindex.io import ReadOptions  # noqa: E402
from refindex.io.resolver import forget_resolutions  # noqa: E402
from refindex.pack import PackOptions, PackProgress, pack  # noqa: E402
from refindex.upload import UploadOptions, upload_files  # noqa: E402
from refindex.upload.options import MiB  # noqa: E402

BUCKET = "bench"


@dataclass
class Bench:
    """The run's store, link and settings."""

    args: argparse.Namespace
    store: StoreFiles
    scratch: Path
    server: EmbeddedS3
    proxy: CountingProxy

    @property
    def bandwidth(self) -> float:
        """Bytes per second each way."""
        return self.args.bandwidth * 1e6 / 8

    def measure(self, run: Callable[[], object]) -> tuple[Measured, object]:
        return measure(self.proxy, self.args.rtt, self.bandwidth, run)

    def upload_options(self) -> UploadOptions:
        changes = {name: getattr(self.args, name) for name in ("part_size", "concurrency")
                   if getattr(self.args, name)}
        connection = ReadOptions.from_env().replace(endpoint_url=self.proxy.url)
        return UploadOptions(connection=connection, **changes)


# --- uploads -------------------------------------------------------------------------------

@dataclass
class UploadRow:
    name: str
    runs: list[Measured]
    data_bytes: int
    objects: int
    phases: list[_Timeline] = dataclasses.field(default_factory=list)
    """Per run of ``pack``, when its parts were packed and uploaded."""


def upload_objects(bench: Bench, prefix: str) -> None:
    """(a) Every file of the store as its own object, ``--s3fs-batch`` at once."""
    import s3fs

    batch = bench.args.s3fs_batch
    fs = s3fs.S3FileSystem(**s3fs_options(bench.proxy.url, bench.server, connections=batch))
    fs.put(f"{bench.store.path}/", f"{BUCKET}/{prefix}/", recursive=True, batch_size=batch)


class _Timeline(PackProgress):
    """Seconds from the start of ``pack`` to the first upload started (a part is uploaded
    while it is packed), to the last part packed, and to the last upload finished."""

    def __init__(self) -> None:
        self._started = time.perf_counter()
        self.first_upload = self.last_part = self.last_upload = 0.0
        self._lock = threading.Lock()

    def part_ready(self, name: str, size: int, kept: bool) -> None:
        with self._lock:
            self.last_part = time.perf_counter() - self._started

    def started(self, path, size: int) -> None:
        with self._lock:
            self.first_upload = self.first_upload or time.perf_counter() - self._started

    def finished(self, result) -> None:
        with self._lock:
            self.last_upload = max(self.last_upload, time.perf_counter() - self._started)


def pack_and_upload(bench: Bench, prefix: str, out: Path):
    """(b) ``refindex pack --upload``: its result and timeline."""
    timeline = _Timeline()
    options = PackOptions(target_size=bench.args.target_size,
                          upload_to=f"s3://{BUCKET}/{prefix}/", upload=bench.upload_options())
    return pack(bench.store.path, out, options, timeline), timeline


def run_uploads(bench: Bench) -> tuple[str | None, Path]:
    """Every upload ``--repeat`` times; prints the table. Returns the prefix of the last
    object-by-object upload (None if skipped) and the sidecar of the last packed one."""
    args, store = bench.args, bench.store
    rows: dict[str, UploadRow] = {}
    native, sidecar, tars = None, None, 0
    for attempt in range(args.repeat):
        if not args.skip_native:
            native = f"objects-{attempt}"
            measured, _ = bench.measure(lambda: upload_objects(bench, native))  # noqa: B023
            _row(rows, f"(a) s3fs put, batch {args.s3fs_batch}", store.bytes,
                 store.files).runs.append(measured)
        out = bench.scratch / f"packed-{attempt}"
        measured, (result, timeline) = bench.measure(
            lambda: pack_and_upload(bench, f"packed-{attempt}", out))  # noqa: B023
        tars = sum(part.size for part in result.parts)
        row = _row(rows, "(b) refindex pack --upload", store.bytes, len(result.parts))
        row.runs.append(measured)
        row.phases.append(timeline)
        paths = [part.path for part in result.parts]
        options = bench.upload_options()
        measured, _ = bench.measure(lambda: upload_files(
            paths, f"s3://{BUCKET}/tars-{attempt}/", options))  # noqa: B023
        _row(rows, "(c) refindex upload of the tars", tars, len(paths)).runs.append(measured)
        if sidecar is not None:
            shutil.rmtree(sidecar.parent, ignore_errors=True)  # the tars of an earlier run
        sidecar = result.sidecar
    _print_uploads(bench, rows, tars)
    return native, sidecar


def _row(rows: dict[str, UploadRow], name: str, data_bytes: int, objects: int) -> UploadRow:
    return rows.setdefault(name, UploadRow(name, [], data_bytes, objects))


def _print_uploads(bench: Bench, rows: dict[str, UploadRow], tars: int) -> None:
    args = bench.args
    link = bench.bandwidth / 1e6
    print(f"\n## Upload: RTT {args.rtt:g} ms, {args.bandwidth:g} Mbit/s each way "
          f"({link:.0f} MB/s), median of {args.repeat}")
    print(f"  store {bench.store.bytes / 1e6:,.0f} MB in {bench.store.files:,} files; "
          f"packed {tars / 1e6:,.0f} MB of tar")
    print(f"  {'':34} {'seconds':>8} {'data MB/s':>9} {'link MB/s':>9} {'requests':>9} "
          f"{'objects':>8} {'vs (a)':>7} {'of link':>7}")
    base = rows.get(f"(a) s3fs put, batch {args.s3fs_batch}")
    base_seconds = statistics.median(m.seconds for m in base.runs) if base else None
    for row in rows.values():
        seconds = statistics.median(m.seconds for m in row.runs)
        up = statistics.median(m.bytes_up / m.seconds for m in row.runs) / 1e6
        requests = statistics.median(m.requests for m in row.runs)
        ratio = f"{base_seconds / seconds:6.1f}x" if base_seconds else "-"
        print(f"  {row.name:34} {seconds:8.2f} {row.data_bytes / 1e6 / seconds:9.1f} "
              f"{up:9.1f} {requests:9,.0f} {row.objects:8,} {ratio:>7} {up / link:6.0%}")
        if row.phases:
            packed = statistics.median(t.last_part for t in row.phases)
            print(f"  {'  packing: start to last part':34} {packed:8.2f} "
                  f"{row.data_bytes / 1e6 / packed:9.1f}")
            span = statistics.median(t.last_upload - t.first_upload for t in row.phases)
            # Request bodies are nearly all the bytes up: the tars over the span of uploads.
            rate = tars / 1e6 / span
            print(f"  {'  uploads: first started to done':34} {span:8.2f} {'':9} "
                  f"{rate:9.1f} {'':9} {'':8} {'':>7} {rate / link:6.0%}")


# --- reads ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Read:
    """One benchmark read: ``pieces`` of (array path, index), read one after the other."""

    name: str
    pieces: list[tuple[str, tuple]]


def reads(store: StoreFiles, slab_bytes: int) -> list[Read]:
    """Every level in full (in z-slabs of whole chunk layers, about ``slab_bytes`` decoded
    each) and a region of level 0 of about 10 × 10 × 3 chunks."""
    group = zarr.open_group(str(store.path), mode="r", zarr_format=2)
    full = []
    for path, array in sorted(group.arrays()):
        plane = array.shape[1] * array.shape[2] * array.dtype.itemsize
        step = max(CHUNK, slab_bytes // plane // CHUNK * CHUNK)
        full += [(path, (slice(z, min(z + step, array.shape[0])),))
                 for z in range(0, array.shape[0], step)]
    depth, side = group["0"].shape[0], group["0"].shape[1]
    middle, across = depth // 2, min(side, 10 * CHUNK)
    start = (side - across) // 2 + CHUNK // 3  # not on chunk boundaries, as a user picks
    region = (slice(max(0, middle - 40), middle + 40),
              slice(start, start + across - CHUNK), slice(start, start + across - CHUNK))
    return [Read("full read, every level", full), Read("region of level 0", [("0", region)])]


class Stopwatch:
    """Seconds spent inside ``timed``: reads are timed, checking their values is not."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def timed(self, run: Callable[[], object]) -> object:
        started = time.perf_counter()
        try:
            return run()
        finally:
            self.seconds += time.perf_counter() - started


def read_pieces(open_group: Callable[[], zarr.Group], read: Read,
                watch: Stopwatch) -> list[int]:
    """Open the group and read ``read``'s pieces; the CRC-32 of each piece's values."""
    group = watch.timed(open_group)
    return [_digest(watch.timed(lambda p=path, i=index: group[p][i]))
            for path, index in read.pieces]


def _digest(values: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(values), zlib.crc32(str(values.shape).encode()))


def native_group(bench: Bench, prefix: str) -> zarr.Group:
    import s3fs

    options = s3fs_options(bench.proxy.url, bench.server, asynchronous=True,
                           connections=bench.args.native_connections)
    # By default s3fs asks for each object's size (a HEAD) before reading it, to read large
    # objects in parallel pieces: one request more per chunk. Its best here is without.
    fs = s3fs.S3FileSystem(**options, max_concurrency=1)
    store = zarr.storage.FsspecStore(fs, read_only=True, path=f"{BUCKET}/{prefix}")
    return zarr.open_group(store, mode="r", zarr_format=2)


def refindex_group(bench: Bench, sidecar: Path) -> zarr.Group:
    store = refindex.open_store(sidecar, endpoint_url=bench.proxy.url)
    return zarr.open_group(store, mode="r", zarr_format=2)


def run_reads(bench: Bench, native: str | None, sidecar: Path) -> None:
    args = bench.args
    tools: dict[str, Callable[[], zarr.Group]] = {}
    if native is not None:
        tools[f"zarr + s3fs ({bench.store.files:,} objects)"] = lambda: native_group(bench,
                                                                                     native)
    tools["refindex (packed tars)"] = lambda: refindex_group(bench, sidecar)
    refindex_chunks = refindex.open_store(sidecar).zarr_concurrency
    print(f"\n## Read back: RTT {args.rtt:g} ms, {args.bandwidth:g} Mbit/s, median of "
          f"{args.repeat}; zarr + s3fs with {args.native_concurrency} chunks at once over "
          f"{args.native_connections} connections")
    for read in reads(bench.store, args.slab_mib * MiB):
        local = Stopwatch()
        with _zarr_concurrency(args.native_concurrency):
            expected = read_pieces(lambda: zarr.open_group(str(bench.store.path), mode="r",
                                                           zarr_format=2), read, local)
        print(f"\n{read.name} ({len(read.pieces)} reads)")
        print(f"  {'tool':34} {'seconds':>8} {'MB/s':>7} {'requests':>9} {'vs native':>9}")
        # zarr's own cost of the read (decoding, assembling): the floor of both tools.
        print(f"  {'(zarr over the local store)':34} {local.seconds:8.2f}")
        base = None
        for name, open_group in tools.items():
            runs = []
            for _ in range(args.repeat):
                forget_resolutions()
                watch = Stopwatch()
                with _zarr_concurrency(args.native_concurrency if "s3fs" in name
                                       else refindex_chunks):
                    measured, digests = bench.measure(
                        lambda g=open_group, r=read, w=watch: read_pieces(g, r, w))
                if digests != expected:
                    print(f"  {name:34} VALUES DIFFER from the local store")
                runs.append(dataclasses.replace(measured, seconds=watch.seconds))
            seconds = statistics.median(m.seconds for m in runs)
            down = statistics.median(m.bytes_down for m in runs)
            requests = statistics.median(m.requests for m in runs)
            base = base or seconds
            print(f"  {name:34} {seconds:8.2f} {down / 1e6 / seconds:7.1f} {requests:9,.0f} "
                  f"{base / seconds:8.1f}x")


def _zarr_concurrency(chunks: int | None):
    """zarr's ``async.concurrency`` for a tool's reads: the competitor's setting, or the
    refindex store's ``zarr_concurrency`` (as refindex's own reads and ``tune_zarr`` use)."""
    return zarr.config.set({"async.concurrency": chunks}) if chunks else contextlib.nullcontext()


# --- the run -------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> None:
    # Cold s3fs clients are left to the garbage collector, which asyncio reports as
    # "Unclosed client session" on every run: noise, not a result.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    store = microscopy(args.chunks)
    print(f"store: {store.path.name}: {store.files:,} files, {store.bytes / 1e6:,.0f} MB "
          f"({store.bytes / store.files / 1e3:.1f} KB a file)")
    with tempfile.TemporaryDirectory(prefix="upload-bench-", dir=args.scratch) as scratch:
        scratch = Path(scratch)
        with s3_behind_link(scratch / "s3", BUCKET) as (server, proxy):
            bench = Bench(args, store, scratch, server, proxy)
            native, sidecar = run_uploads(bench)
            if not args.skip_reads:
                run_reads(bench, native, sidecar)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=100_000,
                        help="chunks of level 0 (default 100000; the pyramid adds ~15%%)")
    parser.add_argument("--rtt", type=float, default=20, help="round trip in ms (default 20)")
    parser.add_argument("--bandwidth", type=float, default=1000,
                        help="Mbit/s each way (default 1000)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each (median)")
    parser.add_argument("--skip-native", action="store_true",
                        help="only refindex: no object-by-object upload, no native read")
    parser.add_argument("--skip-reads", action="store_true", help="upload only")
    parser.add_argument("--s3fs-batch", type=int, default=256,
                        help="files s3fs puts at once, over as many connections (default 256)")
    parser.add_argument("--native-concurrency", type=int, default=64,
                        help="zarr's async.concurrency for the native read (default 64)")
    parser.add_argument("--native-connections", type=int, default=64,
                        help="s3fs connections for the native read (default 64)")
    parser.add_argument("--target-size", type=int, default=PackOptions.target_size,
                        help="bytes of tar per packed part (default: pack's, 2 GiB)")
    parser.add_argument("--part-size", type=int, help="upload part size in bytes "
                        "(default: refindex's)")
    parser.add_argument("--concurrency", type=int, help="upload parts in flight "
                        "(default: refindex's)")
    parser.add_argument("--slab-mib", type=int, default=1024,
                        help="MiB decoded per slab of the full read (default 1024)")
    parser.add_argument("--scratch", help="folder for the S3 server's data and the tars "
                        "(default: the system's temporary folder)")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
