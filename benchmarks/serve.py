"""``refindex serve`` under a neuroglancer-like workload, against viewers reading the unpacked
store's objects straight from S3 and against xpublish serving the same data; one run.

    python benchmarks/serve.py                           # 4 viewers, 20 ms, 1 Gbit/s
    python benchmarks/serve.py --viewers 8 --steps 30 --repeat 5
    python benchmarks/serve.py --skip-xpublish

Data (made once in benchmarks/.data): a microscopy-like pyramid (benchmarks/microscopy.py's
cells, shot noise and camera offset) of uint16 in 64³ chunks, Blosc zstd + bit-shuffle (a
codec every viewer decodes, so refindex serves the stored bytes), nested chunk keys; level 0
is --depth × --side × --side chunks (default 4 × 16 × 16: 256 × 1,024 × 1,024 voxels,
1,024 chunks of 150-250 KB), level 1 its 2 × 2 × 2 means. It is uploaded to an embedded S3
server (SeaweedFS on 127.0.0.1) twice: as one object per chunk, and packed by ``refindex
pack`` into tar parts. Every byte from S3 crosses a proxy that adds --rtt to each request
and caps the link at --bandwidth.

Routes, each started cold (new process, empty caches) for every repeat:

- ``refindex serve``: the packed store's sidecar, served by the CLI in a process of its own
  (one worker), reading the tars through the proxy;
- direct: viewers GET each chunk object from S3 through the proxy (presigned URLs made
  before the clock starts: as a browser reads a public bucket, one plain GET per chunk);
- xpublish (with the xpublish-zarr plugin; Zarr v3 keys) over ``xr.open_zarr`` of the
  objects (s3fs through the proxy), in a process of its own (uvicorn);
- with --tar-ranges, viewers reading each chunk's byte range of the tars from S3 directly
  (one ranged GET a chunk, no merging): what the packed layout itself costs.

``--readahead`` and ``-O FIELD=VALUE`` are passed to ``refindex serve``.

Workload: --viewers viewers at once, each with a view of 2 × 4 × 4 chunks of level 0 that
moves by one chunk along a random axis --steps times (seeded; the same walks for every
route). At each position a viewer asks, at once, for the chunks of its view it has not
seen yet (a burst), over at most --connections connections (6: a browser's limit per
host), and moves on when all have come. Printed per route (medians over --repeat runs):
chunks/s (all viewers together), p50 and p99 latency of a chunk request (and p99 after each
viewer's first burst, when every route is warm), upstream requests
per chunk (requests that crossed the proxy / chunks served) and the serving process's CPU
time per chunk. Served values are checked against the local store, chunk by chunk, for a
sample of each route's chunks.

xpublish is not a dependency of refindex: install it where the benchmark can import it
(``pip install --target DIR xpublish xpublish-zarr fastapi uvicorn`` and --xpublish-path
DIR), or it is skipped, saying so.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402
import numcodecs  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402
import zarr  # noqa: E402

from benchmarks.datasets import DATA  # noqa: E402
from benchmarks.microscopy import _cell_sprites, _half, _layer  # noqa: E402
from benchmarks.s3_link import s3_behind_link  # noqa: E402
from benchmarks.serve_routes import (  # noqa: E402
    BUCKET,
    CHUNK,
    check,
    direct_urls,
    start_refindex,
    start_xpublish,
    stop,
    tar_ranges,
)
from refindex.io import ReadOptions  # noqa: E402
from refindex.pack import PackOptions, pack  # noqa: E402
from refindex.upload import UploadOptions  # noqa: E402

VIEW = (2, 4, 4)  # chunks a viewer sees (z, y, x)
ROOT = Path(__file__).resolve().parents[1]


# --- data ----------------------------------------------------------------------------------

def pyramid(depth: int, side: int) -> Path:
    """The two-level pyramid of ``depth × side × side`` 64³ chunks at level 0, made once."""
    shape = (depth * CHUNK, side * CHUNK, side * CHUNK)
    path = DATA / f"serve-{shape[0]}x{shape[1]}x{shape[2]}.zarr"
    if path.exists():
        return path
    partial = path.with_suffix(".partial")
    shutil.rmtree(partial, ignore_errors=True)
    group = zarr.open_group(zarr.storage.LocalStore(partial), mode="w", zarr_format=2)
    compressor = numcodecs.Blosc("zstd", 5, numcodecs.Blosc.BITSHUFFLE)
    arrays = []
    for level in range(2):
        level_shape = tuple(n >> level for n in shape)
        dims = [f"{axis}{level}" for axis in "zyx"]
        arrays.append(group.create_array(
            name=str(level), shape=level_shape, chunks=(CHUNK,) * 3, dtype="uint16",
            compressors=compressor, fill_value=0, attributes={"_ARRAY_DIMENSIONS": dims},
            chunk_key_encoding={"name": "v2", "separator": "/"}))
    rng = np.random.default_rng(2024)
    sprites = _cell_sprites(rng)
    for z in range(0, shape[0], CHUNK):
        planes = _layer(rng, sprites, (CHUNK, shape[1], shape[2]))
        arrays[0][z:z + CHUNK] = planes
        arrays[1][z // 2:(z + CHUNK) // 2] = _half(planes)
    zarr.consolidate_metadata(group.store)
    partial.rename(path)
    return path


def upload_objects(client, store: Path, prefix: str) -> int:
    """Every file of ``store`` as an object under ``prefix``; the number of files."""
    files = [f for f in store.rglob("*") if f.is_file()]

    def put(path: Path) -> None:
        client.put_object(Bucket=BUCKET, Key=f"{prefix}/{path.relative_to(store)}",
                          Body=path.read_bytes())

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, files))
    return len(files)


# --- the workload --------------------------------------------------------------------------

def walks(viewers: int, steps: int, grid: tuple[int, ...], seed: int) -> list[list[list]]:
    """Per viewer, per position, the chunks (z, y, x) of level 0 it asks for there."""
    rng = np.random.default_rng(seed)
    result = []
    for _ in range(viewers):
        corner = [int(rng.integers(0, g - v + 1)) for g, v in zip(grid, VIEW, strict=True)]
        seen: set[tuple[int, ...]] = set()
        bursts = []
        for _ in range(steps + 1):
            view = {(z, y, x) for z in range(corner[0], corner[0] + VIEW[0])
                    for y in range(corner[1], corner[1] + VIEW[1])
                    for x in range(corner[2], corner[2] + VIEW[2])}
            bursts.append(sorted(view - seen))
            seen |= view
            axis = int(rng.integers(3))
            step = 1 if rng.random() < 0.5 else -1
            limit = grid[axis] - VIEW[axis]
            if not 0 <= corner[axis] + step <= limit:
                step = -step
            corner[axis] = min(max(corner[axis] + step, 0), limit)
        result.append(bursts)
    return result


@dataclass
class Outcome:
    seconds: float
    latencies: list[float] = field(default_factory=list)
    warm: list[float] = field(default_factory=list)
    """Latencies of the requests after each viewer's first burst."""
    chunks: int = 0
    bytes: int = 0


async def run_viewers(url_of, plan: list[list[list]], connections: int,
                      with_headers: bool = False) -> Outcome:
    """Every viewer's walk at once; each chunk GET timed. ``url_of(coords)`` is a chunk's
    URL, or (URL, headers) ``with_headers``."""
    outcome = Outcome(0.0)

    async def viewer(bursts: list[list]) -> None:
        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=connector) as session:
            async def get(coords, first: bool) -> None:
                started = time.perf_counter()
                url, headers = url_of(coords) if with_headers else (url_of(coords), None)
                async with session.get(url, headers=headers) as response:
                    body = await response.read()
                    if response.status not in (200, 206):
                        raise RuntimeError(f"{url}: {response.status} {body[:200]!r}")
                outcome.latencies.append(time.perf_counter() - started)
                if not first:
                    outcome.warm.append(outcome.latencies[-1])
                outcome.chunks += 1
                outcome.bytes += len(body)

            for n, burst in enumerate(bursts):
                await asyncio.gather(*(get(c, n == 0) for c in burst))

    started = time.perf_counter()
    await asyncio.gather(*(viewer(b) for b in plan))
    outcome.seconds = time.perf_counter() - started
    return outcome


# --- the run -------------------------------------------------------------------------------

@dataclass
class Row:
    name: str
    runs: list[dict] = field(default_factory=list)

    def median(self, key: str) -> float:
        return statistics.median(r[key] for r in self.runs)


def measure_route(name: str, start, plan, proxy, args, rows: dict[str, Row],
                  check_sample: list | None, reference) -> None:
    process, url_of, base = start()
    try:
        cpu = psutil.Process(process.pid) if process is not None else None
        before = sum(cpu.cpu_times()[:2]) if cpu else 0.0
        proxy.configure(delay=args.rtt / 1000, bandwidth=args.bandwidth * 1e6 / 8)
        proxy.counters.reset()
        outcome = asyncio.run(run_viewers(url_of, plan, args.connections,
                                          with_headers="ranges" in name))
        upstream, upstream_bytes = proxy.counters.requests, proxy.counters.bytes_down
        cpu_seconds = (sum(cpu.cpu_times()[:2]) - before) if cpu else math.nan
        if check_sample and base:
            check(base, reference, check_sample, 3 if "xpublish" in name else 2)
    finally:
        stop(process)
    latencies, warm = sorted(outcome.latencies), sorted(outcome.warm)
    rows.setdefault(name, Row(name)).runs.append({
        "chunks/s": outcome.chunks / outcome.seconds,
        "p50 ms": 1000 * latencies[len(latencies) // 2],
        "p99 ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "p99 ms after 1st burst": 1000 * warm[min(len(warm) - 1, int(0.99 * len(warm)))],
        "upstream/chunk": upstream / outcome.chunks,
        "CPU ms/chunk": 1000 * cpu_seconds / outcome.chunks,
        "upstream/served bytes": upstream_bytes / outcome.bytes,
        "chunks": outcome.chunks, "MB": outcome.bytes / 1e6})
    print(f"  {name}: {rows[name].runs[-1]}", flush=True)


def run(args: argparse.Namespace) -> None:
    store = pyramid(args.depth, args.side)
    grid = (args.depth, args.side, args.side)
    reference = zarr.open_group(zarr.storage.LocalStore(store), mode="r")["0"]
    xpublish_path = args.xpublish_path
    if not args.skip_xpublish and not _imports(xpublish_path, "xpublish", "xpublish_zarr"):
        print(f"xpublish (and xpublish-zarr) cannot be imported from {xpublish_path!r}: "
              "skipped", flush=True)
        args.skip_xpublish = True
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as scratch, \
            s3_behind_link(Path(scratch) / "s3", BUCKET) as (server, proxy):
        objects = upload_objects(server.client(), store, "objects")
        connection = ReadOptions.from_env().replace(endpoint_url=server.endpoint_url)
        packed = pack(store, Path(scratch) / "packed", PackOptions(
            target_size=args.target_size, upload_to=f"s3://{BUCKET}/packed/",
            upload=UploadOptions(connection=connection)))
        print(f"store: {store.name}, {objects:,} objects; packed into {len(packed.parts)} "
              f"tar part(s); link {args.rtt} ms, {args.bandwidth} Mbit/s; {args.viewers} "
              f"viewers × {args.steps} moves, {args.connections} connections each",
              flush=True)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        urls = direct_urls(server, proxy.url, grid)
        routes = {"refindex serve (packed)": lambda: start_refindex(
            Path(packed.sidecar), proxy.url, env, args.option, args.readahead),
                  "direct S3 (objects)": lambda: (None, urls.__getitem__, None)}
        if args.tar_ranges:
            ranges = tar_ranges(server, proxy.url, packed.index, grid)
            routes["direct S3 (tar ranges)"] = lambda: (None, ranges.__getitem__, None)
        if args.skip_direct:
            del routes["direct S3 (objects)"]
        if not args.skip_xpublish:
            routes["xpublish (objects)"] = lambda: start_xpublish(proxy.url, server, env,
                                                                  xpublish_path)
        rows: dict[str, Row] = {}
        for repeat in range(args.repeat):
            plan = walks(args.viewers, args.steps, grid, seed=repeat)
            sample = sorted({c for bursts in plan for burst in bursts for c in burst})[::37]
            print(f"run {repeat + 1}: {sum(len(b) for p in plan for b in p)} chunk requests",
                  flush=True)
            for name, start in routes.items():
                measure_route(name, start, plan, proxy, args, rows,
                              sample if repeat == 0 else None, reference)
    _print(rows, args)


def _imports(path: str | None, *modules: str) -> bool:
    if path is None:
        return False
    code = "; ".join(f"import {m}" for m in modules)
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.run([sys.executable, "-c", code], env=env,
                          capture_output=True).returncode == 0


def _print(rows: dict[str, Row], args: argparse.Namespace) -> None:
    keys = ("chunks/s", "p50 ms", "p99 ms", "p99 ms after 1st burst", "upstream/chunk",
            "CPU ms/chunk", "upstream/served bytes")
    print(f"\nmedians of {args.repeat} run(s):")
    print(f"{'route':<26}" + "".join(f"{k:>24}" for k in keys))
    for row in rows.values():
        print(f"{row.name:<26}" + "".join(f"{row.median(k):>24.3f}" for k in keys))
    serve, direct = rows.get("refindex serve (packed)"), rows.get("direct S3 (objects)")
    if serve and direct:
        print(f"\nrefindex serve / direct: throughput × "
              f"{serve.median('chunks/s') / direct.median('chunks/s'):.2f}, p99 × "
              f"{serve.median('p99 ms') / direct.median('p99 ms'):.2f}; upstream requests "
              f"per chunk {serve.median('upstream/chunk'):.3f} (target ≤ 0.125)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", type=int, default=16, help="level-0 chunks along y and x")
    parser.add_argument("--depth", type=int, default=4, help="level-0 chunks along z")
    parser.add_argument("--viewers", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20, help="moves of each viewer")
    parser.add_argument("--connections", type=int, default=6, help="per viewer")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rtt", type=float, default=20.0, help="ms added to each request")
    parser.add_argument("--bandwidth", type=float, default=1000.0, help="Mbit/s each way")
    parser.add_argument("--target-size", type=int, default=64 * 2**20,
                        help="bytes of a tar part")
    parser.add_argument("--xpublish-path", default=os.environ.get("XPUBLISH_PATH"),
                        help="folder xpublish, xpublish-zarr, fastapi and uvicorn are "
                             "installed in (pip install --target)")
    parser.add_argument("--skip-xpublish", action="store_true")
    parser.add_argument("-O", dest="option", action="append", default=[],
                        metavar="FIELD=VALUE", help="read option of refindex serve")
    parser.add_argument("--readahead", action="store_true",
                        help="refindex serve --readahead")
    parser.add_argument("--skip-direct", action="store_true")
    parser.add_argument("--tar-ranges", action="store_true",
                        help="also viewers reading each chunk's range of the packed tars from "
                             "S3 directly (one ranged GET a chunk): what the layout costs")
    run(parser.parse_args())


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
