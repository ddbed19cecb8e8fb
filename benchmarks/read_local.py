"""Local reads (no network, files on disk): what refindex costs on this side of the wire, against
h5py and kerchunk + fsspec + zarr 3 on the same files, in one run.

    python benchmarks/read_local.py                  # plane and volume, medians of 3
    python benchmarks/read_local.py --only plane --repeat 5
    python benchmarks/read_local.py --gib 0.5 --tools h5py,refindex

Cases: a plane of 1,024 chunks of about 1.4 KB (``climate``: 1024 × 1024 float32 in 32 × 32
chunks, zlib + shuffle), printed as µs per chunk, cold (the process's first read: engine
and pools start) and warm (the next plane, same process); and a full read of a gzip + shuffle
float32 volume in 64³ chunks (``volume``, --gib GiB), printed as seconds, cores busy (CPU
seconds / wall seconds) and peak memory (the process's peak RSS growth during the read, MB,
beside the array's size). Tools: ``refindex`` (the xarray backend: refindex's region reader),
``refindex-read`` (``ReferenceStore.read_region_sync``, what ``refindex read`` uses),
``refindex-zarr`` (``zarr.open(refindex.open_store(...))``), ``kerchunk`` (its sidecar
through fsspec's reference filesystem and zarr) and ``h5py``. Each measurement runs in a
fresh process (cold: no cache, a clean peak RSS); every result is checked against h5py's
bit for bit. The 2-core machine may be shared: compare tools within one run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks.datasets import climate, volume  # noqa: E402

TOOLS = ("h5py", "refindex", "refindex-read", "refindex-zarr", "kerchunk")
# --cache-size: the engine's in-memory cache of fetched ranges (default 256 MiB), part of
# refindex's peak memory on a full read.
_OPTIONS = {"cache_size": int(os.environ["READ_LOCAL_CACHE"])} \
    if os.environ.get("READ_LOCAL_CACHE") else {}
CASES = {"plane": ("tas", (0, slice(None), slice(None))),
         "volume": ("volume", (slice(None), slice(None), slice(None)))}


def prepare(path: Path, workdir: Path) -> tuple[Path, Path]:
    """(refindex sidecar, kerchunk sidecar) of ``path``."""
    from kerchunk.hdf import SingleHdf5ToZarr

    import refindex

    sidecar = workdir / f"{path.stem}.refs.json"
    refindex.write_index(refindex.scan(path).index, sidecar)
    kerchunk = workdir / f"{path.stem}.kerchunk.json"
    kerchunk.write_text(json.dumps(SingleHdf5ToZarr(str(path), inline_threshold=0).translate()))
    return sidecar, kerchunk


def read(tool: str, path: str, sidecar: str, kerchunk: str, variable: str):
    """A function reading ``index`` of ``variable`` with ``tool`` (imports and opening done
    before the clock starts)."""
    if tool == "h5py":
        import h5py

        f = h5py.File(path, "r")  # open before the clock, as the others open their sidecars
        return lambda index: f[variable][index]
    if tool == "refindex":
        import xarray as xr

        # xarray imports dask.array on a variable's first indexing (0.3-0.5 s): before the
        # clock, it is no cost of the read
        with contextlib.suppress(ImportError):
            import dask.array  # noqa: F401
        dataset = xr.open_dataset(sidecar, engine="refindex", mask_and_scale=False,
                                  decode_times=False, storage_options=_OPTIONS)
        return lambda index: dataset[variable][index].values
    import zarr

    import refindex
    if tool == "refindex-read":
        from refindex.selection import basic_selection

        store = refindex.open_store(sidecar, **_OPTIONS)
        shape = tuple(store.index.arrays[variable].zarray["shape"])

        def region(index):
            picked = basic_selection(index, shape)
            return store.read_region_sync(variable, picked.region)[picked.pick]
        return region
    if tool == "refindex-zarr":
        store = refindex.open_store(sidecar, **_OPTIONS)
        refindex.tune_zarr(store)
        return lambda index: zarr.open_group(store, mode="r", zarr_format=2)[variable][index]
    import fsspec

    fs = fsspec.filesystem("reference", fo=kerchunk, asynchronous=True)
    store = zarr.storage.FsspecStore(fs, read_only=True, path="")
    return lambda index: zarr.open_group(store, mode="r", zarr_format=2)[variable][index]


def measure(arguments: list[str]) -> None:
    """One measurement in this (fresh) process: prints seconds, CPU seconds, RSS growth."""
    tool, path, sidecar, kerchunk, case, expected = arguments
    variable, index = CASES[case]
    reader = read(tool, path, sidecar, kerchunk, variable)
    before_rss = _peak_rss_kb()
    before, started = os.times(), time.perf_counter()
    values = np.asarray(reader(index))
    seconds = time.perf_counter() - started
    after = os.times()
    peak = _peak_rss_kb() - before_rss
    same = bool(np.array_equal(values, np.load(expected), equal_nan=True))
    warm = None
    if case == "plane":  # the next plane, in the same process: no start-up costs
        started = time.perf_counter()
        np.asarray(reader((1, *index[1:])))
        warm = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "cpu": (after.user - before.user)
                      + (after.system - before.system), "peak_mb": peak / 1024,
                      "mb": values.nbytes / 2**20, "same": same, "warm": warm}))


def _peak_rss_kb() -> int:
    """This process's peak RSS (VmHWM: unlike ru_maxrss, not inherited from the parent that
    forked it, which holds the data sets it made)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:  # pragma: no cover - not Linux
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run(args: argparse.Namespace) -> None:
    files = {"plane": climate(4), "volume": volume(args.gib)}
    cases = [args.only] if args.only else list(CASES)
    tools = args.tools.split(",")
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        for case in cases:
            path = files[case]
            sidecar, kerchunk = prepare(path, workdir)
            variable, index = CASES[case]
            import h5py

            expected = workdir / f"{case}.npy"
            with h5py.File(path, "r") as f:
                np.save(expected, f[variable][index])
            results: dict[str, list[dict]] = {tool: [] for tool in tools}
            for _ in range(args.repeat):  # tools interleaved: load changes hit all alike
                for tool in tools:
                    out = subprocess.run(
                        [sys.executable, __file__, "--measure", tool, str(path), str(sidecar),
                         str(kerchunk), case, str(expected)],
                        check=True, capture_output=True, text=True).stdout
                    results[tool].append(json.loads(out.strip().splitlines()[-1]))
            report(case, results)


def report(case: str, results: dict[str, list[dict]]) -> None:
    mb = next(iter(results.values()))[0]["mb"]
    print(f"\n{case} ({mb:.0f} MB of values), medians of {len(next(iter(results.values())))}:")
    for tool, runs in results.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        cores = statistics.median(r["cpu"] / r["seconds"] for r in runs)
        peak = statistics.median(r["peak_mb"] for r in runs)
        exact = "exact" if all(r["same"] for r in runs) else "DIFFERENT VALUES"
        if case == "plane":
            warm = statistics.median(r["warm"] for r in runs)
            print(f"  {tool:14} {seconds * 1e6 / 1024:6.0f} µs/chunk cold, "
                  f"{warm * 1e6 / 1024:4.0f} warm  {seconds:6.3f} s  {cores:4.2f} cores  {exact}")
        else:
            print(f"  {tool:14} {seconds:7.2f} s  {cores:4.2f} cores  peak +{peak:6.0f} MB "
                  f"({peak / mb:4.2f}× the array)  {exact}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--measure":
        measure(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gib", type=float, default=0.375,
                        help="volume size in GiB (default 0.375: 448³ float32, 343 MiB)")
    parser.add_argument("--only", choices=list(CASES))
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cache-size", type=int, metavar="BYTES",
                        help="refindex's in-memory cache of fetched ranges (default: 256 MiB)")
    args = parser.parse_args()
    if args.cache_size is not None:  # read by each measuring process
        os.environ["READ_LOCAL_CACHE"] = str(args.cache_size)
    run(args)


if __name__ == "__main__":
    main()
