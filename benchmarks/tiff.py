"""TIFF on S3: refindex against tifffile over s3fs and tifffile's own kerchunk references
(``aszarr().write_fsspec``) read by fsspec + zarr 3, on the same tiled OME-TIFF, through the
same latency/bandwidth-emulating proxy, in one run.

    python benchmarks/tiff.py                      # a 2 GiB pyramid (made once), RTT 20 ms
    python benchmarks/tiff.py --mib 256 --rtt 0 20 --repeat 1

The file (made once in benchmarks/.data by tifffile): an OME-TIFF of uint16 planes of
2,048 × 2,048 pixels (camera-like noise on smooth structure) in 256 × 256 tiles, zlib with
horizontal differencing, and two pyramid levels as SubIFDs. Printed: what a remote scan
costs (refindex, and tifffile making its references from the object through s3fs), then
per read (a 2-D plane, a 3-D region, the whole level 0) seconds, requests and refindex's
speed-up over each competitor. Each read is cold (new store or file system, no cache);
tifffile over s3fs opens the file anew for each read, reading its IFDs (in 64 KiB blocks,
as refindex's scan does: s3fs's default 50 MiB blocks would fetch most of the file).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import tifffile  # noqa: E402
import zarr  # noqa: E402

import refindex  # noqa: E402
from benchmarks.datasets import DATA  # noqa: E402
from benchmarks.s3_link import measure, s3_behind_link, s3fs_options  # noqa: E402
from benchmarks.scan import _upload  # noqa: E402
from refindex.io import ReadOptions  # noqa: E402
from refindex.store.tuning import zarr_concurrency  # noqa: E402

BUCKET = "bench"
SIDE, TILE = 2048, 256
S3FS_BLOCK = 64 * 1024
SELECTIONS = {
    "2-D plane": lambda planes: (planes // 2, slice(None), slice(None)),
    "3-D region": lambda planes: (slice(planes // 4, planes // 4 + 8), slice(700, 1100),
                                  slice(900, 1400)),
    "full level 0": lambda planes: (slice(None),) * 3,
}


def ome_tiff(mib: float) -> Path:
    """The OME-TIFF of about ``mib`` MiB of uint16 values (level 0), made on first use."""
    planes = max(4, round(mib * 2**20 / (SIDE * SIDE * 2)))
    path = DATA / f"tiff-{planes}x{SIDE}x{SIDE}.ome.tif"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:SIDE, 0:SIDE].astype("f4") / SIDE
    partial = path.with_suffix(".partial")
    options = {"tile": (TILE, TILE), "compression": "zlib", "compressionargs": {"level": 1},
               "predictor": 2, "photometric": "minisblack"}
    with tifffile.TiffWriter(partial, bigtiff=True, ome=True) as tif:
        def planes_of(step: int):
            """The tiles of every plane, each plane downsampled by ``step``."""
            side = SIDE // step
            for z in range(planes):
                smooth = 800 + 600 * np.sin(6 * xx + z / 7) * np.cos(5 * yy - z / 11)
                plane = (smooth + rng.normal(0, 12, smooth.shape))[::step, ::step]
                plane = plane.astype("u2")
                for y in range(0, side, TILE):
                    for x in range(0, side, TILE):
                        tile = np.zeros((TILE, TILE), "u2")
                        part = plane[y:y + TILE, x:x + TILE]
                        tile[:part.shape[0], :part.shape[1]] = part
                        yield tile

        tif.write(planes_of(1), shape=(planes, SIDE, SIDE), dtype="u2", subifds=2,
                  metadata={"axes": "ZYX", "PhysicalSizeX": 0.2, "PhysicalSizeY": 0.2},
                  **options)
        for step in (2, 4):
            tif.write(planes_of(step), shape=(planes, SIDE // step, SIDE // step), dtype="u2",
                      subfiletype=1, **options)
    partial.rename(path)
    return path


def references(path: Path, url: str, target: Path) -> Path:
    """tifffile's kerchunk references of level 0, naming ``url``."""
    with tifffile.TiffFile(path) as tif, tif.series[0].aszarr(level=0) as store:
        store.write_fsspec(str(target), url=url.rsplit("/", 1)[0] + "/", version=1)
    return target


# --- the tools ---------------------------------------------------------------------------

def read_refindex(ctx: dict, index: tuple) -> np.ndarray:
    store = refindex.open_store(ctx["sidecar"], endpoint_url=ctx["endpoint"])
    array = zarr.open_group(store, mode="r", zarr_format=2)["0"]
    with zarr_concurrency(store.zarr_concurrency):
        return array[index]


def read_refindex_region(ctx: dict, index: tuple) -> np.ndarray:
    """refindex's own region read (what ``refindex read`` and the xarray backend use):
    chunks fetched in one batch, decoded on every core straight into the result."""
    from refindex.selection import basic_selection

    store = refindex.open_store(ctx["sidecar"], endpoint_url=ctx["endpoint"])
    try:
        selection = basic_selection(index, tuple(store.index.arrays["0"].zarray["shape"]))
        return store.read_region_sync("0", selection.region)[selection.pick]
    finally:
        store.close()


def _s3_file(ctx: dict):
    """The object through s3fs in blocks of S3FS_BLOCK (s3fs's default, 50 MiB, would fetch
    most of the file to read its IFDs)."""
    import s3fs

    fs = s3fs.S3FileSystem(**s3fs_options(ctx["endpoint"], ctx["server"]))
    return fs.open(f"{BUCKET}/{ctx['key']}", "rb", block_size=S3FS_BLOCK)


def read_tifffile_s3fs(ctx: dict, index: tuple) -> np.ndarray:
    with (_s3_file(ctx) as f, tifffile.TiffFile(f) as tif,
          tif.series[0].aszarr(level=0) as store):
        return zarr.open_array(store, mode="r", zarr_format=2)[index]


def tifffile_references(ctx: dict, target: Path) -> None:
    """tifffile's kerchunk references made from the object on S3 (its "scan")."""
    with (_s3_file(ctx) as f, tifffile.TiffFile(f) as tif,
          tif.series[0].aszarr(level=0) as store):
        store.write_fsspec(str(target), url=f"s3://{BUCKET}/", version=1)


def read_tifffile_kerchunk(ctx: dict, index: tuple) -> np.ndarray:
    import fsspec
    import imagecodecs.numcodecs

    imagecodecs.numcodecs.register_codecs(verbose=False)
    fs = fsspec.filesystem(
        "reference", fo=str(ctx["kerchunk"]), asynchronous=True, remote_protocol="s3",
        remote_options=s3fs_options(ctx["endpoint"], ctx["server"], asynchronous=True))
    store = zarr.storage.FsspecStore(fs, read_only=True, path="")
    return zarr.open_array(store, mode="r", zarr_format=2)[index]


TOOLS = {"refindex": read_refindex, "refindex region": read_refindex_region,
         "tifffile+s3fs": read_tifffile_s3fs,
         "tifffile kerchunk": read_tifffile_kerchunk}


# --- the run ------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> None:
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    logging.getLogger("tifffile").setLevel(logging.ERROR)
    path = ome_tiff(args.mib)
    with tifffile.TiffFile(path) as tif:
        planes = tif.series[0].shape[0]
    bandwidth = args.bandwidth * 1e6 / 8
    print(f"{path.name}: {path.stat().st_size / 2**20:.0f} MiB, {planes} planes of "
          f"{SIDE} × {SIDE} uint16 in {TILE}² zlib tiles, 3 levels")
    with contextlib.ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        server, proxy = stack.enter_context(s3_behind_link(scratch / "s3", BUCKET))
        _upload(server, path, BUCKET, path.name)
        url = f"s3://{BUCKET}/{path.name}"
        ctx = {"endpoint": proxy.url, "server": server, "key": path.name,
               "kerchunk": references(path, url, scratch / "tifffile.json")}
        for rtt in args.rtt:
            print(f"\n## RTT {rtt} ms, {args.bandwidth:g} Mbit/s, median of {args.repeat}")
            cost, result = measure(proxy, rtt, bandwidth, lambda: refindex.scan(
                url, read_options=ReadOptions.from_env().replace(endpoint_url=proxy.url)))
            ctx["sidecar"] = scratch / "tiff.refs.json"
            refindex.write_index(result.index, ctx["sidecar"])
            print(f"refindex remote scan: {cost.seconds:.2f} s, {cost.requests} requests, "
                  f"{cost.bytes_down / 2**20:.2f} MiB down "
                  f"({cost.bytes_down / path.stat().st_size:.2%} of the file)")
            cost, _ = measure(proxy, rtt, bandwidth, lambda: tifffile_references(
                ctx, scratch / "tifffile-s3.json"))
            print(f"tifffile references from S3 (s3fs, {S3FS_BLOCK // 1024} KiB blocks): "
                  f"{cost.seconds:.2f} s, {cost.requests} requests, "
                  f"{cost.bytes_down / 2**20:.2f} MiB down")
            for name, select in SELECTIONS.items():
                if name.startswith("full") and args.no_full:
                    continue
                _run_selection(proxy, ctx, name, select(planes), rtt, bandwidth, args.repeat)


def _run_selection(proxy, ctx: dict, name: str, index: tuple, rtt: float, bandwidth: float,
                   repeat: int) -> None:
    print(f"\n{name}:")
    print(f"  {'tool':18} {'seconds':>8} {'requests':>8} {'MiB down':>9} {'vs refindex':>11}")
    expected, rows = None, {}
    for tool, read in TOOLS.items():
        runs = []
        try:
            for _ in range(repeat):
                cost, values = measure(proxy, rtt, bandwidth, lambda r=read: r(ctx, index))
                runs.append(cost)
        except Exception as exc:  # a competitor failing is a result  # noqa: BLE001
            print(f"  {tool:18} failed: {type(exc).__name__}: {str(exc)[:100]}")
            continue
        if expected is None:
            expected = values
        elif not np.array_equal(expected, values):
            print(f"  {tool:18} VALUES DIFFER")
        rows[tool] = (statistics.median(r.seconds for r in runs),
                      statistics.median(r.requests for r in runs),
                      statistics.median(r.bytes_down for r in runs))
    base = rows.get("refindex", (None,))[0]
    for tool, (seconds, requests, down) in rows.items():
        ratio = f"{seconds / base:10.1f}x" if base else "-"
        print(f"  {tool:18} {seconds:8.2f} {requests:8.0f} {down / 2**20:9.1f} {ratio:>11}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=float, default=2048, help="level 0 size in MiB")
    parser.add_argument("--rtt", type=float, nargs="+", default=[20],
                        help="emulated round-trip times in ms (default: 20)")
    parser.add_argument("--bandwidth", type=float, default=1000, help="Mbit/s (default 1000)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-full", action="store_true", help="skip the full read")
    run(parser.parse_args())


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"\n({time.perf_counter() - started:.0f} s in all)")
