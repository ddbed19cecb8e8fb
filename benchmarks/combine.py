"""Many daily NetCDF4 files as one dataset: refindex vs kerchunk, VirtualiZarr and
xr.open_mfdataset, on the same files in S3 (SeaweedFS behind the latency proxy), in one run.

    python benchmarks/combine.py --files 1000          # 20 ms, 1 Gbit/s, medians of 3
    python benchmarks/combine.py --files 10000 --repeat 1 --tools refindex,kerchunk

Steps, each tool cold in a process of its own (peak memory is that process's):
(a)+(b) list the prefix, scan every file and combine them into one dataset (refindex: one
``refindex scan PREFIX --combine`` command, then ``refindex combine`` alone for the
breakdown; kerchunk: ``SingleHdf5ToZarr`` then ``MultiZarrToZarr``; VirtualiZarr:
``open_virtual_mfdataset``), (c) open the result and read one point's full time series
(touches every member) and one day's map. ``xr.open_mfdataset(engine="h5netcdf")`` over
s3fs has no index: its (a)+(b) is opening the files. Every value read is compared with
netCDF4 on the local files.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the benchmarks package next to refindex
    sys.path.insert(0, str(ROOT))

BUCKET = "bench"
PREFIX = "daily/"
LAT, LON, CHUNK = 180, 360, (1, 90, 180)
POINT = (90, 180)
TOOLS = ("refindex", "kerchunk", "virtualizarr", "open_mfdataset")
MIB = 2**20


# --- data -----------------------------------------------------------------------------------

def daily_files(count: int, directory: Path) -> list[Path]:
    """``count`` daily files (cached): time (1), lat, lon; tas and pr float32 in chunks of
    (1, 90, 180), zlib + shuffle, with a _FillValue; a history attribute that differs."""
    import netCDF4

    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"day-{d:05d}.nc" for d in range(count)]
    done = directory / ".complete"
    if done.exists() and int(done.read_text()) == count:
        return paths
    rng = np.random.default_rng(0)
    base = (rng.standard_normal((LAT, LON)) * 10 + 280).astype("f4")
    for d, path in enumerate(paths):
        with netCDF4.Dataset(path, "w") as f:
            f.createDimension("time", None)
            f.createDimension("lat", LAT)
            f.createDimension("lon", LON)
            t = f.createVariable("time", "f8", ("time",))
            t.units, t.calendar = "days since 2000-01-01", "standard"
            t[:] = [d]
            f.createVariable("lat", "f4", ("lat",))[:] = np.linspace(-89.5, 89.5, LAT)
            f.createVariable("lon", "f4", ("lon",))[:] = np.linspace(0.5, 359.5, LON)
            for name, shift in (("tas", 0.0), ("pr", -275.0)):
                v = f.createVariable(name, "f4", ("time", "lat", "lon"), zlib=True,
                                     complevel=4, shuffle=True, chunksizes=CHUNK,
                                     fill_value=np.float32(1e20))
                v.units = "K" if name == "tas" else "mm"
                field = base + shift + np.float32(np.sin(d / 58.0) * 5)
                v[0] = np.round(field + rng.standard_normal((LAT, LON)).astype("f4"), 2)
            f.title = "benchmark daily collection"
            f.history = f"written for day {d}"
    done.write_text(str(count))
    return paths


def upload(server, paths: list[Path]) -> None:
    client = server.client()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda p: client.put_object(Bucket=BUCKET, Key=PREFIX + p.name,
                                              Body=p.read_bytes()), paths))


def reference(paths: list[Path]) -> dict[str, np.ndarray]:
    """The point series and the middle day's map, read with netCDF4 from the local files."""
    import netCDF4

    series = []
    for path in paths:
        with netCDF4.Dataset(path) as f:
            series.append(np.ma.filled(f["tas"][0, POINT[0], POINT[1]], np.nan))
    with netCDF4.Dataset(paths[len(paths) // 2]) as f:
        day = np.ma.filled(f["tas"][0], np.nan)
    return {"series": np.asarray(series, dtype="f4"), "map": day}


# --- the tools, each step run in a fresh process (``--step``) --------------------------------

def _urls(endpoint: str) -> list[str]:
    import s3fs

    fs = s3fs.S3FileSystem(**_s3fs_options(endpoint))
    return sorted(f"s3://{key}" for key in fs.ls(f"{BUCKET}/{PREFIX}") if key.endswith(".nc"))


def _s3fs_options(endpoint: str) -> dict:
    return {"key": os.environ["AWS_ACCESS_KEY_ID"], "secret": os.environ["AWS_SECRET_ACCESS_KEY"],
            "skip_instance_cache": True,
            "client_kwargs": {"endpoint_url": endpoint,
                              "region_name": os.environ.get("AWS_REGION", "us-east-1")}}


def step_refindex_index(work: Path, endpoint: str, jobs: int) -> dict:
    """List, scan and combine: the one command a user runs."""
    from refindex.cli import main

    started = time.perf_counter()
    code = main(["scan", f"s3://{BUCKET}/{PREFIX}", "--combine", "--concat-dim", "time",
                 "-o", str(work / "coll"), "--endpoint-url", endpoint, "--jobs", str(jobs)])
    return {"seconds": time.perf_counter() - started, "code": code,
            **_sidecar_figures(work / "coll", ("collection.json", "collection.log",
                                               "members"))}


def step_refindex_combine(work: Path, endpoint: str) -> dict:
    """Combining alone, from the collection's members (for the breakdown)."""
    from refindex.cli import main

    started = time.perf_counter()
    code = main(["combine", str(work / "coll"), "--concat-dim", "time", "-o",
                 str(work / "combined.refs"), "--endpoint-url", endpoint])
    return {"seconds": time.perf_counter() - started, "code": code,
            **_sidecar_figures(work / "combined.refs")}


def _sidecar_figures(path: Path, leave_out: tuple[str, ...] = ()) -> dict:
    """Bytes of the combined sidecar (a file, or a directory without the collection's own
    files), per chunk, and the time to open it."""
    import refindex

    opened = time.perf_counter()
    index = refindex.load_index(path)
    open_seconds = time.perf_counter() - opened
    if path.is_dir():
        size = sum(p.stat().st_size for p in path.rglob("*")
                   if p.is_file() and p.relative_to(path).parts[0] not in leave_out)
    else:
        size = path.stat().st_size
    return {"open_seconds": open_seconds, "sidecar_bytes": size,
            "chunks": index.chunk_count()}


def step_refindex_read(work: Path, endpoint: str) -> dict:
    import xarray as xr

    started = time.perf_counter()
    ds = xr.open_dataset(work / "coll", engine="refindex",
                         storage_options={"endpoint_url": endpoint})
    return _read(ds, work, "refindex", started)


def step_kerchunk_index(work: Path, endpoint: str, jobs: int) -> dict:
    import fsspec
    import ujson
    from kerchunk.combine import MultiZarrToZarr
    from kerchunk.hdf import SingleHdf5ToZarr

    started = time.perf_counter()
    urls = _urls(endpoint)
    options = _s3fs_options(endpoint)

    def one(url: str) -> dict:
        with fsspec.open(url, "rb", **options) as f:
            return SingleHdf5ToZarr(f, url, inline_threshold=300).translate()

    # Threads, as kerchunk's docs suggest for many files (h5py serialises the parsing, the
    # requests overlap).
    with concurrent.futures.ThreadPoolExecutor(max(8, jobs * 4)) as pool:
        singles = list(pool.map(one, urls))
    scanned = time.perf_counter()
    combined = MultiZarrToZarr(singles, concat_dims=["time"], identical_dims=["lat", "lon"],
                               remote_protocol="s3", remote_options=options).translate()
    (work / "kerchunk.json").write_text(ujson.dumps(combined))
    done = time.perf_counter()
    return {"seconds": done - started, "scan_seconds": scanned - started,
            "combine_seconds": done - scanned, "sidecar_bytes": _size(work / "kerchunk.json"),
            "chunks": _kerchunk_chunks(combined)}


def step_kerchunk_read(work: Path, endpoint: str, name: str = "kerchunk") -> dict:
    import xarray as xr

    started = time.perf_counter()
    ds = xr.open_dataset(
        "reference://", engine="zarr",
        backend_kwargs={"consolidated": False, "zarr_format": 2, "storage_options": {
            "fo": str(work / f"{name}.json"), "remote_protocol": "s3",
            "remote_options": {**_s3fs_options(endpoint), "asynchronous": True},
            "asynchronous": True}})
    return _read(ds, work, name, started)


def step_virtualizarr_index(work: Path, endpoint: str, jobs: int) -> dict:
    from obspec_utils.registry import ObjectStoreRegistry
    from obstore.store import S3Store
    from virtualizarr import open_virtual_mfdataset
    from virtualizarr.parsers import HDFParser

    started = time.perf_counter()
    urls = _urls(endpoint)
    store = S3Store(BUCKET, endpoint=endpoint, access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
                    secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                    region=os.environ.get("AWS_REGION", "us-east-1"),
                    client_options={"allow_http": True})
    registry = ObjectStoreRegistry({f"s3://{BUCKET}": store})
    vds = open_virtual_mfdataset(urls, registry=registry, parser=HDFParser(),
                                 parallel=concurrent.futures.ThreadPoolExecutor,
                                 combine="nested", concat_dim="time", data_vars="minimal",
                                 coords="minimal", compat="override",
                                 loadable_variables=["time", "lat", "lon"])
    combined = time.perf_counter()
    vds.vz.to_kerchunk(str(work / "virtualizarr.json"), format="json")
    done = time.perf_counter()
    return {"seconds": done - started, "scan_seconds": combined - started,
            "combine_seconds": done - combined,
            "sidecar_bytes": _size(work / "virtualizarr.json"),
            "chunks": _kerchunk_chunks(json.loads((work / "virtualizarr.json").read_text()))}


def step_virtualizarr_read(work: Path, endpoint: str) -> dict:
    return step_kerchunk_read(work, endpoint, "virtualizarr")


def step_open_mfdataset_read(work: Path, endpoint: str) -> dict:
    import s3fs
    import xarray as xr

    started = time.perf_counter()
    fs = s3fs.S3FileSystem(**_s3fs_options(endpoint))
    files = [fs.open(key, "rb") for key in sorted(fs.ls(f"{BUCKET}/{PREFIX}"))]
    ds = xr.open_mfdataset(files, engine="h5netcdf", combine="by_coords",
                           data_vars="minimal", coords="minimal", compat="override")
    return _read(ds, work, "open_mfdataset", started)


def _read(ds, work: Path, name: str, started: float) -> dict:
    opened = time.perf_counter()
    series = np.asarray(ds["tas"][:, POINT[0], POINT[1]].values, dtype="f4")
    read_series = time.perf_counter()
    day = np.asarray(ds["tas"][ds.sizes["time"] // 2].values, dtype="f4")
    done = time.perf_counter()
    np.save(work / f"{name}-series.npy", series)
    np.save(work / f"{name}-map.npy", day)
    times = ds["time"].values
    exact_times = bool((np.diff(times) > np.timedelta64(0)).all())
    return {"open_seconds": opened - started, "series_seconds": read_series - opened,
            "map_seconds": done - read_series, "seconds": done - started,
            "times_increasing": exact_times}


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _kerchunk_chunks(refs: dict) -> int:
    return sum(1 for key in refs.get("refs", refs) if not key.rsplit("/", 1)[-1].startswith("."))


STEPS = {
    ("refindex", "index"): step_refindex_index,
    ("refindex", "read"): step_refindex_read,
    ("refindex", "combine"): step_refindex_combine,
    ("kerchunk", "index"): step_kerchunk_index,
    ("kerchunk", "read"): step_kerchunk_read,
    ("virtualizarr", "index"): step_virtualizarr_index,
    ("virtualizarr", "read"): step_virtualizarr_read,
    ("open_mfdataset", "read"): step_open_mfdataset_read,
}


def run_step(tool: str, step: str, work: Path, endpoint: str, jobs: int) -> None:
    """In the step's own process: run it, print one JSON line with its figures and the
    process's peak memory."""
    import resource

    function = STEPS[(tool, step)]
    kwargs = {"jobs": jobs} if step == "index" else {}
    result = function(work, endpoint, **kwargs)
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    print("RESULT " + json.dumps({**result, "peak_mb": peak}))


# --- the parent: server, link, runs, table ---------------------------------------------------

def measured_step(proxy, args, tool: str, step: str, work: Path) -> dict:
    from benchmarks.s3_link import measure

    def run():
        return subprocess.run(
            [sys.executable, __file__, "--step", tool, step, "--work", str(work),
             "--endpoint", proxy.url, "--jobs", str(args.jobs)],
            capture_output=True, text=True, timeout=args.timeout, cwd=ROOT)

    try:
        link, done = measure(proxy, args.latency, args.bandwidth * 1e6 / 8, run)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.timeout} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": tail[:200]}
    result = json.loads(lines[-1][len("RESULT "):])
    if result.get("code") not in (None, 0):
        return {"error": f"exit code {result['code']}: {done.stderr.strip()[-200:]}"}
    return {**result, "requests": link.requests, "mb_down": link.bytes_down / MIB}


def run(args: argparse.Namespace) -> None:
    from benchmarks.s3_link import s3_behind_link

    data = daily_files(args.files, ROOT / "benchmarks" / ".data" / f"combine-{args.files}")
    expected = reference(data)
    tools = [t for t in args.tools.split(",") if t]
    with tempfile.TemporaryDirectory(prefix="refindex-combine-") as scratch, \
            s3_behind_link(Path(scratch) / "s3", BUCKET) as (server, proxy):
        upload(server, data)
        _say(f"{len(data)} files, {sum(p.stat().st_size for p in data) / MIB:.0f} MiB, "
             f"uploaded; {args.latency:g} ms, {args.bandwidth:g} Mbit/s")
        results: dict[tuple[str, str], list[dict]] = {}
        for repeat in range(args.repeat):
            for tool in tools:
                work = Path(scratch) / f"{tool}-{repeat}"
                work.mkdir()
                for step in [s for t, s in STEPS if t == tool]:
                    _say(f"run {repeat + 1}: {tool} {step} ...")
                    result = measured_step(proxy, args, tool, step, work)
                    if step == "read" and "error" not in result:
                        result["exact"] = _exact(work, tool, expected)
                    results.setdefault((tool, step), []).append(result)
                    _say(f"  {_brief(result)}")
                    if "error" in result:
                        break
        report(results, tools, args)


def _exact(work: Path, tool: str, expected: dict) -> bool:
    series = np.load(work / f"{tool}-series.npy")
    day = np.load(work / f"{tool}-map.npy")
    return bool(np.array_equal(series, expected["series"], equal_nan=True)
                and np.array_equal(day, expected["map"], equal_nan=True))


def _median(runs: list[dict], key: str):
    values = [r[key] for r in runs if key in r]
    return statistics.median(values) if values else None


def report(results: dict, tools: list[str], args: argparse.Namespace) -> None:
    print(f"\n{args.files:,} daily files; {args.latency:g} ms, {args.bandwidth:g} Mbit/s; "
          f"medians of {args.repeat}")
    print(f"{'tool':16} {'step':8} {'seconds':>9} {'peak MB':>8} {'requests':>9} "
          f"{'MB down':>8}  detail")
    for (tool, step), runs in results.items():
        errors = [r["error"] for r in runs if "error" in r]
        if errors:
            print(f"{tool:16} {step:8} failed: {errors[0]}")
            continue
        detail = []
        for key in ("scan_seconds", "combine_seconds", "open_seconds", "series_seconds",
                    "map_seconds"):
            if _median(runs, key) is not None:
                detail.append(f"{key.removesuffix('_seconds')} {_median(runs, key):.2f} s")
        if _median(runs, "sidecar_bytes"):
            size, chunks = _median(runs, "sidecar_bytes"), _median(runs, "chunks")
            detail.append(f"sidecar {size:,.0f} B, {size / max(chunks, 1):.1f} B/chunk")
        if any("exact" in r for r in runs):
            detail.append("exact" if all(r.get("exact") for r in runs) else "WRONG VALUES")
        print(f"{tool:16} {step:8} {_median(runs, 'seconds'):9.2f} "
              f"{_median(runs, 'peak_mb'):8.0f} {_median(runs, 'requests'):9.0f} "
              f"{_median(runs, 'mb_down'):8.1f}  {'; '.join(detail)}")
    _ratios(results)


def _ratios(results: dict) -> None:
    def total(tool: str, steps: tuple[str, ...]) -> float | None:
        runs = [results.get((tool, s)) for s in steps]
        if any(r is None or any("error" in x for x in r) for r in runs):
            return None
        return sum(_median(r, "seconds") for r in runs)

    ours = total("refindex", ("index",))  # scan --combine: listing, scanning and combining
    ours_peak = _median(results.get(("refindex", "index"), []), "peak_mb") or 0
    ours_series = _median(results.get(("refindex", "read"), []), "series_seconds")
    print()
    for tool in ("kerchunk", "virtualizarr"):
        theirs = total(tool, ("index",))
        if ours and theirs:
            peak = _median(results[(tool, "index")], "peak_mb")
            print(f"scan + combine: refindex {ours:.1f} s vs {tool} {theirs:.1f} s = "
                  f"{theirs / ours:.1f}x faster; peak memory {ours_peak:.0f} vs {peak:.0f} MB "
                  f"= 1/{peak / max(ours_peak, 1):.1f}")
    for tool in ("open_mfdataset", "kerchunk", "virtualizarr"):
        theirs = _median(results.get((tool, "read"), []), "series_seconds")
        if ours_series and theirs:
            extra = ""
            if tool == "open_mfdataset":
                opened = _median(results[(tool, "read")], "open_seconds")
                ours_open = _median(results[("refindex", "read")], "open_seconds")
                extra = (f"; open + series {opened + theirs:.2f} s vs "
                         f"{ours_open + ours_series:.2f} s = "
                         f"{(opened + theirs) / (ours_open + ours_series):.1f}x")
            print(f"point time series: refindex {ours_series:.2f} s vs {tool} {theirs:.2f} s "
                  f"= {theirs / ours_series:.1f}x{extra}")


def _brief(result: dict) -> str:
    if "error" in result:
        return f"failed: {result['error']}"
    return ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                     for k, v in result.items())


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=20.0, help="ms per request")
    parser.add_argument("--bandwidth", type=float, default=1000.0, help="Mbit/s each way")
    parser.add_argument("--repeat", type=int, default=None,
                        help="runs per tool (default 3 up to 2,000 files, else 1)")
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="worker processes (refindex) / threads per core (kerchunk)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per step")
    parser.add_argument("--step", nargs=2, metavar=("TOOL", "STEP"), help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        run_step(*args.step, Path(args.work), args.endpoint, args.jobs)
        return
    if args.repeat is None:
        args.repeat = 3 if args.files <= 2000 else 1
    run(args)


if __name__ == "__main__":
    main()
