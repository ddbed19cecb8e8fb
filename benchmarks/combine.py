"""Many daily NetCDF4 files as one dataset: refindex vs kerchunk, VirtualiZarr and
xr.open_mfdataset, on the same files in S3 (SeaweedFS behind the latency proxy), in one run.

    python benchmarks/combine.py --files 100 --repeat 1        # a quick look
    python benchmarks/combine.py --files 1000                  # 20 ms, 1 Gbit/s, medians of 3
    python benchmarks/combine.py --files 1000 --tools kerchunk:serial,kerchunk:threads=16
    python benchmarks/combine.py --files 10000 --tools refindex,virtualizarr --keep

Steps, each tool cold in a process of its own (peak memory: that process's high-water mark
plus each of its children's), timed inside it (imports excluded, the same for every tool):
(a) list the prefix and scan every file, (b) combine them into one dataset, (c) open the
result, read one point's full time series (one chunk of every member) and the middle day's
map. refindex: ``refindex scan`` then ``refindex combine`` (and ``scan --combine``, the one
command); kerchunk: ``SingleHdf5ToZarr`` per file, then ``MultiZarrToZarr``; VirtualiZarr:
``open_virtual_mfdataset`` (both at once) then ``to_kerchunk``; ``xr.open_mfdataset(engine=
"h5netcdf")`` over s3fs has no index: its (a)+(b) is the open. A tool may be named with its
way of working in parallel (``kerchunk:processes=2``, ``virtualizarr:dask``,
``open_mfdataset:serial``); unnamed, the fastest measured at 100 files (``PARALLEL``). Every
value read, and the decoded time, is compared bit for bit with ``xr.open_mfdataset(engine=
"netcdf4")`` on the local files.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
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

from benchmarks.daily_files import POINT  # noqa: E402

BUCKET, PREFIX = "bench", "daily/"
TOOLS = ("refindex", "kerchunk", "virtualizarr", "open_mfdataset")
# The fastest way each competitor works in parallel on this 2-core machine, from --files 100
# runs of every option (medians of 3, scan + combine): kerchunk 4.9 s with 4 processes
# (5.6 s with 6, 6.4 s serial, 6.6 s in 16 threads: h5py holds its lock while it reads through
# the Python file object, so threads do not overlap; 11.9 s on dask.bag's processes);
# VirtualiZarr 9.3 s in 16 threads (10.1 s in its default 6, 12.1 s in processes, 13.4 s with
# "dask", 18.6 s serial; lithops is not installed); open_mfdataset opens in 5.0 s with
# parallel=True (6.6 s without). refindex parallelises by itself (a worker per core).
PARALLEL = {"kerchunk": "processes=4", "virtualizarr": "threads=16", "open_mfdataset": "dask"}
STEPS = {"refindex": ("scan", "combine", "read", "scan --combine"),
         "kerchunk": ("scan", "combine", "read"), "virtualizarr": ("scan+combine", "read"),
         "open_mfdataset": ("read",)}
NEEDS = {("refindex", "combine"): "scan", ("refindex", "read"): "combine",  # what a step
         ("kerchunk", "combine"): "scan", ("kerchunk", "read"): "combine",  # reads
         ("virtualizarr", "read"): "scan+combine"}
MIB = 2**20


# --- the steps, each in a fresh process (``--step``) ----------------------------------------

def _s3fs_options(endpoint: str) -> dict:
    # No skip_instance_cache: every step is a fresh process, and a user's script (kerchunk's
    # examples) makes one filesystem for all files; one per file costs a botocore session each.
    return {"key": os.environ["AWS_ACCESS_KEY_ID"], "secret": os.environ["AWS_SECRET_ACCESS_KEY"],
            "client_kwargs": {"endpoint_url": endpoint, "region_name": os.environ["AWS_REGION"]}}


def _list(fs) -> list[str]:
    return sorted(f"s3://{key}" for key in fs.ls(f"{BUCKET}/{PREFIX}") if key.endswith(".nc"))


def _refindex(*argv: str) -> None:
    from refindex.cli import main

    code = main(list(argv))
    if code:
        raise RuntimeError(f"refindex {argv[0]} exited with {code}")


def step_refindex_scan(work: Path, endpoint: str, option: str) -> dict:
    started = time.perf_counter()
    _refindex("scan", f"s3://{BUCKET}/{PREFIX}", "-o", str(work / "coll"),
              "--endpoint-url", endpoint)
    return {"seconds": time.perf_counter() - started}


def step_refindex_combine(work: Path, endpoint: str, option: str) -> dict:
    started = time.perf_counter()
    _refindex("combine", str(work / "coll"), "--concat-dim", "time",
              "-o", str(work / "combined.refs"))
    return {"seconds": time.perf_counter() - started, **_sidecar(work / "combined.refs")}


def step_refindex_one_command(work: Path, endpoint: str, option: str) -> dict:
    started = time.perf_counter()
    _refindex("scan", f"s3://{BUCKET}/{PREFIX}", "--combine", "--concat-dim", "time",
              "-o", str(work / "coll-combined"), "--endpoint-url", endpoint)
    return {"seconds": time.perf_counter() - started}


def _sidecar(path: Path) -> dict:
    import refindex

    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return {"sidecar_bytes": sum(p.stat().st_size for p in files),
            "chunks": refindex.load_index(path).chunk_count()}


def step_refindex_read(work: Path, endpoint: str, option: str) -> dict:
    import xarray as xr

    import refindex
    import refindex.xarray.backend  # noqa: F401 - imports stay out of the clock, as for all

    load_index = refindex.load_index  # refindex loads its names on first use: now, not timed
    path = work / "combined.refs"
    started = time.perf_counter()
    load_index(path)
    loaded = time.perf_counter()
    ds = xr.open_dataset(path, engine="refindex", storage_options={"endpoint_url": endpoint})
    return {"load_index_seconds": loaded - started, **_read(ds, work, loaded)}


def _kerchunk_one(url: str, endpoint: str, inline: int) -> dict:
    import fsspec
    from kerchunk.hdf import SingleHdf5ToZarr

    fs = fsspec.filesystem("s3", **_s3fs_options(endpoint))  # one instance per process
    # As kerchunk's examples open files: the first block (the whole file here) cached.
    with fs.open(url, "rb", default_fill_cache=False, default_cache_type="first") as f:
        return SingleHdf5ToZarr(f, url, inline_threshold=inline).translate()


def step_kerchunk_scan(work: Path, endpoint: str, option: str) -> dict:
    import functools

    import fsspec
    import ujson

    started = time.perf_counter()
    urls = _list(fsspec.filesystem("s3", **_s3fs_options(endpoint)))
    inline = int(os.environ["BENCH_KERCHUNK_INLINE"])
    singles = _parallel_map(option, functools.partial(_kerchunk_one, endpoint=endpoint,
                                                      inline=inline), urls)
    seconds = time.perf_counter() - started
    (work / "singles.json").write_text(ujson.dumps(singles))  # for the next step, untimed
    return {"seconds": seconds}


def _parallel_map(option: str, function, items: list) -> list:
    """``function`` over ``items``: ``serial``, ``threads[=N]``, ``processes[=N]`` (a
    process pool) or ``dask`` (a dask.bag on its default scheduler, as kerchunk's docs do)."""
    import concurrent.futures

    kind, _, count = option.partition("=")
    workers = int(count) if count else None
    if kind == "serial":
        return [function(item) for item in items]
    if kind == "dask":
        import dask.bag

        return dask.bag.from_sequence(items, npartitions=workers or 2 * os.cpu_count()).map(
            function).compute()
    pools = {"threads": concurrent.futures.ThreadPoolExecutor,
             "processes": concurrent.futures.ProcessPoolExecutor}
    with pools[kind](workers) as pool:
        return list(pool.map(function, items))


def step_kerchunk_combine(work: Path, endpoint: str, option: str) -> dict:
    import ujson
    from kerchunk.combine import MultiZarrToZarr

    singles = ujson.loads((work / "singles.json").read_text())
    started = time.perf_counter()
    combined = MultiZarrToZarr(singles, concat_dims=["time"], identical_dims=["lat", "lon"],
                               remote_protocol="s3",
                               remote_options=_s3fs_options(endpoint)).translate()
    (work / "combined.json").write_text(ujson.dumps(combined))
    return {"seconds": time.perf_counter() - started,
            **_kerchunk_sidecar(work / "combined.json")}


def _kerchunk_sidecar(path: Path) -> dict:
    refs = json.loads(path.read_text())
    refs = refs.get("refs", refs)
    return {"sidecar_bytes": path.stat().st_size,
            "chunks": sum(1 for key in refs if not key.rsplit("/", 1)[-1].startswith("."))}


def step_kerchunk_read(work: Path, endpoint: str, option: str) -> dict:
    import xarray as xr

    started = time.perf_counter()
    ds = xr.open_dataset(
        "reference://", engine="zarr",
        backend_kwargs={"consolidated": False, "zarr_format": 2, "storage_options": {
            "fo": str(work / "combined.json"), "remote_protocol": "s3",
            "remote_options": {**_s3fs_options(endpoint), "asynchronous": True},
            "asynchronous": True}})
    return _read(ds, work, started)


def step_virtualizarr_scan_combine(work: Path, endpoint: str, option: str) -> dict:
    import concurrent.futures

    import fsspec
    from obspec_utils.registry import ObjectStoreRegistry
    from obstore.store import S3Store
    from virtualizarr import open_virtual_mfdataset
    from virtualizarr.parsers import HDFParser

    kind, _, count = option.partition("=")
    parallel = {"serial": False, "dask": "dask", "lithops": "lithops",
                "threads": _thread_pool(int(count)) if count else (
                    concurrent.futures.ThreadPoolExecutor),
                "processes": concurrent.futures.ProcessPoolExecutor}[kind]
    started = time.perf_counter()
    urls = _list(fsspec.filesystem("s3", **_s3fs_options(endpoint)))
    store = S3Store(BUCKET, endpoint=endpoint, access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
                    secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                    region=os.environ["AWS_REGION"], client_options={"allow_http": True})
    registry = ObjectStoreRegistry({f"s3://{BUCKET}": store})
    # As VirtualiZarr's docs combine along a dimension: nested, nothing compared that does
    # not vary, the dimension coordinates loaded (small) so the result is self-describing.
    vds = open_virtual_mfdataset(urls, registry=registry, parser=HDFParser(),
                                 parallel=parallel, combine="nested", concat_dim="time",
                                 data_vars="minimal", coords="minimal", compat="override",
                                 loadable_variables=["time", "lat", "lon"])
    opened = time.perf_counter()
    vds.vz.to_kerchunk(str(work / "combined.json"), format="json")
    done = time.perf_counter()
    return {"seconds": done - started, "open_seconds": opened - started,
            "write_seconds": done - opened, **_kerchunk_sidecar(work / "combined.json")}


def _thread_pool(workers: int) -> type:
    """A ThreadPoolExecutor class of ``workers`` threads (VirtualiZarr takes a class)."""
    import concurrent.futures

    class Pool(concurrent.futures.ThreadPoolExecutor):
        def __init__(self, max_workers: int | None = None, **kwargs) -> None:
            super().__init__(max_workers or workers, **kwargs)

    return Pool


def step_open_mfdataset_read(work: Path, endpoint: str, option: str) -> dict:
    import s3fs
    import xarray as xr

    started = time.perf_counter()
    fs = s3fs.S3FileSystem(**_s3fs_options(endpoint))
    files = [fs.open(url, "rb") for url in _list(fs)]
    ds = xr.open_mfdataset(files, engine="h5netcdf", combine="by_coords",
                           parallel=option == "dask")
    return _read(ds, work, started)


def _read(ds, work: Path, started: float) -> dict:
    """The point's series and the middle day's map of ``ds``, saved for the comparison."""
    opened = time.perf_counter()
    series = ds["tas"][:, POINT[0], POINT[1]].values
    read_series = time.perf_counter()
    day = ds["tas"].isel(time=ds.sizes["time"] // 2).values
    done = time.perf_counter()
    np.savez(work / "values.npz", series=series, map=day, time=ds["time"].values)
    return {"seconds": done - started, "open_seconds": opened - started,
            "series_seconds": read_series - opened, "map_seconds": done - read_series}


STEP_FUNCTIONS = {
    ("refindex", "scan"): step_refindex_scan,
    ("refindex", "combine"): step_refindex_combine,
    ("refindex", "scan --combine"): step_refindex_one_command,
    ("refindex", "read"): step_refindex_read,
    ("kerchunk", "scan"): step_kerchunk_scan,
    ("kerchunk", "combine"): step_kerchunk_combine,
    ("kerchunk", "read"): step_kerchunk_read,
    ("virtualizarr", "scan+combine"): step_virtualizarr_scan_combine,
    ("virtualizarr", "read"): step_kerchunk_read,
    ("open_mfdataset", "read"): step_open_mfdataset_read,
}


def run_step(tool: str, step: str, option: str, work: Path, endpoint: str) -> None:
    """In the step's own process: run it, print one line of JSON with its figures and the
    process's peak memory (MB), or with the error that stopped it."""
    import logging

    # Cold s3fs clients left to the garbage collector: "Unclosed client session", noise.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    try:
        result = STEP_FUNCTIONS[(tool, step)](work, endpoint, option)
    except Exception as exc:  # a tool failing is a result: its first line goes in the table
        first = (str(exc).strip().splitlines() or [""])[0]
        result = {"error": f"{type(exc).__name__}: {first}"[:200]}
    print("RESULT " + json.dumps({**result, "peak_mb": _high_water(os.getpid()) / MIB}),
          flush=True)


def _high_water(pid: int) -> int:
    """Peak resident bytes of process ``pid`` (VmHWM; 0 once it is gone). Not getrusage's
    ru_maxrss: Linux carries that over exec from the process that forked, so a step started
    by a parent of 400 MB would report at least 400 MB."""
    try:
        with open(f"/proc/{pid}/status") as status:
            line = next(line for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return 0
    return int(line.split()[1]) * 1024


class DescendantsPeak:
    """The peak memory of the processes a step starts (worker processes, pools), each its
    high-water mark sampled every ``interval`` seconds while it runs, summed (bytes)."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        import threading

        self._pid, self._interval, self._peaks = pid, interval, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> DescendantsPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def bytes(self) -> int:
        return sum(self._peaks.values())

    def _sample(self) -> None:
        import psutil

        while not self._stop.wait(self._interval):
            try:
                children = psutil.Process(self._pid).children(recursive=True)
            except psutil.Error:
                return
            for child in children:
                peak = _high_water(child.pid)
                self._peaks[child.pid] = max(self._peaks.get(child.pid, 0), peak)


# --- the parent: data, server, link, runs -----------------------------------------------------

class Tool:
    """A tool as the run names it (``kerchunk:threads=16``): its name and parallel option."""

    def __init__(self, spec: str) -> None:
        self.name, _, option = spec.partition(":")
        if self.name not in TOOLS:
            raise SystemExit(f"unknown tool {self.name!r}: one of {', '.join(TOOLS)}")
        self.option = option or PARALLEL.get(self.name, "")
        self.label = f"{self.name}:{self.option}" if self.option else self.name


def measured_step(proxy, args, tool: Tool, step: str, work: Path) -> dict:
    """One step in a fresh process through the link: its figures, requests and bytes."""
    from benchmarks.s3_link import measure

    env = {**os.environ, "AWS_ENDPOINT_URL": proxy.url, "AWS_ENDPOINT_URL_S3": proxy.url,
           "BENCH_KERCHUNK_INLINE": str(args.kerchunk_inline)}
    command = [sys.executable, __file__, "--step", tool.name, step, tool.option or "-",
               "--work", str(work), "--endpoint", proxy.url]

    def run() -> tuple[int, str, str]:
        # A session of its own, so that a hung step is killed with all it started.
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, cwd=ROOT, env=env, start_new_session=True)
        with DescendantsPeak(child.pid) as descendants:
            try:
                out, err = child.communicate(timeout=args.timeout)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.communicate()
                return -1, "", f"timed out after {args.timeout:g} s", 0
            except BaseException:  # interrupted: leave no step running
                os.killpg(child.pid, signal.SIGKILL)
                raise
        return child.returncode, out, err, descendants.bytes

    link, (code, out, err, children) = measure(proxy, args.latency, args.bandwidth * 1e6 / 8,
                                               run)
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    if not lines:
        tail = [line for line in err.strip().splitlines() if line.strip()] or [f"exit {code}"]
        return {"error": tail[-1][:200]}
    result = json.loads(lines[-1].removeprefix("RESULT "))
    return {**result, "peak_mb": result["peak_mb"] + children / MIB,
            "requests": link.requests, "mb": (link.bytes_down + link.bytes_up) / MIB}


def run(args: argparse.Namespace, tools: list[Tool]) -> None:
    from benchmarks.daily_files import daily_files, reference_values, upload
    from benchmarks.s3_link import s3_behind_link

    data_dir = Path(args.data_dir or ROOT / "benchmarks" / ".data" / f"combine-{args.files}")
    _say(f"writing or checking {args.files} files in {data_dir} ...")
    paths = daily_files(args.files, data_dir)
    expected = reference_values(paths, data_dir)
    with tempfile.TemporaryDirectory(prefix="refindex-combine-") as scratch:
        server_dir = data_dir.with_name(data_dir.name + "-s3") if args.keep else (
            Path(scratch) / "s3")
        with s3_behind_link(server_dir, BUCKET) as (server, proxy):
            upload(server, paths, BUCKET, PREFIX)
            _say(f"{len(paths)} files, {sum(p.stat().st_size for p in paths) / MIB:.0f} MiB "
                 f"in s3://{BUCKET}/{PREFIX}; {args.latency:g} ms, {args.bandwidth:g} Mbit/s")
            results = run_tools(proxy, args, tools, Path(scratch), expected)
    report(results, args)


def run_tools(proxy, args, tools: list[Tool], scratch: Path, expected: dict) -> dict:
    """Every step of every tool, ``args.repeat`` times (tools interleaved, so a busy moment
    of the shared machine does not fall on one tool): {(label, step): [figures per run]}."""
    results: dict[tuple[str, str], list[dict]] = {}
    for repeat in range(args.repeat):
        for tool in tools:
            work = scratch / f"{tool.label.replace(':', '-')}-{repeat}"
            work.mkdir()
            failed = set()
            for step in STEPS[tool.name]:
                if NEEDS.get((tool.name, step)) in failed:
                    failed.add(step)
                    continue
                _say(f"run {repeat + 1}/{args.repeat}: {tool.label} {step} ...")
                result = measured_step(proxy, args, tool, step, work)
                if step == "read" and "error" not in result:
                    result["exact"] = exact(np.load(work / "values.npz"), expected)
                results.setdefault((tool.label, step), []).append(result)
                _say(f"  {_brief(result)}")
                if "error" in result:
                    failed.add(step)
    return results


def exact(values, expected: dict) -> bool:
    """The values read equal the reference bit for bit (NaN where missing), with the same
    dtype and shape, and the decoded times equal."""
    same = all(values[key].dtype == expected[key].dtype
               and values[key].shape == expected[key].shape for key in expected)
    return same and all(np.array_equal(values[key], expected[key],
                                       equal_nan=values[key].dtype.kind == "f")
                        for key in expected)


# --- the report --------------------------------------------------------------------------------

def _median(runs: list[dict], key: str):
    values = [r[key] for r in runs if key in r]
    return statistics.median(values) if values else None


def _row(runs: list[dict]) -> dict | None:
    """Medians of the runs of a step; None when any run failed."""
    if not runs or any("error" in r for r in runs):
        return None
    keys = {key for r in runs for key in r if key != "exact"}
    row = {key: _median(runs, key) for key in keys}
    if any("exact" in r for r in runs):
        row["exact"] = all(r.get("exact") for r in runs)
    return row


def _sum(rows: list[dict | None]) -> dict | None:
    """Steps run one after the other: seconds, requests and bytes add, peaks do not."""
    if any(r is None for r in rows):
        return None
    total = {key: sum(r[key] for r in rows) for key in ("seconds", "requests", "mb")}
    total["peak_mb"] = max(r["peak_mb"] for r in rows)
    for row in rows:
        total.update({key: row[key] for key in ("sidecar_bytes", "chunks") if key in row})
    return total


def step_rows(results: dict) -> dict[str, dict[str, dict | str]]:
    """The table's rows per step: {step title: {row name: medians, or why there are none}}."""
    def get(label: str, step: str) -> dict | str:
        runs = results.get((label, step), [])
        errors = [r["error"] for r in runs if "error" in r]
        return f"failed: {errors[0]}" if errors else (_row(runs) or "not run")

    labels = list(dict.fromkeys(label for label, _ in results))
    table: dict[str, dict[str, dict | str]] = {
        "(a) list + scan": {}, "(b) combine": {}, "(a)+(b) list + scan + combine": {},
        "(c) open, point series, one day's map": {}}
    scan, comb, both, read = table.values()
    for label in labels:
        name = label.partition(":")[0]
        if name in ("refindex", "kerchunk"):
            scan[label], comb[label] = get(label, "scan"), get(label, "combine")
            parts = [scan[label], comb[label]]
            both[label] = _sum(parts) if all(isinstance(p, dict) for p in parts) else next(
                p for p in parts if isinstance(p, str))
        if name == "refindex":
            both["refindex (scan --combine)"] = get(label, "scan --combine")
        if name == "virtualizarr":
            both[label] = get(label, "scan+combine")
        opened = get(label, "read")
        if name == "open_mfdataset":
            both[label] = ({"seconds": opened["open_seconds"], "note": "the open"}
                           if isinstance(opened, dict) else opened)
        read[label] = opened
    return table


def report(results: dict, args: argparse.Namespace) -> None:
    print(f"\n{args.files:,} daily files; {args.latency:g} ms per request, "
          f"{args.bandwidth:g} Mbit/s; medians of {args.repeat}")
    table = step_rows(results)
    for title, rows in table.items():
        if not rows:
            continue
        print(f"\n{title}\n{'tool':28} {'seconds':>8} {'peak MB':>8} {'requests':>8} "
              f"{'MB moved':>8} {'sidecar B':>10} {'B/chunk':>7} {'values':>6}  detail")
        for name, row in rows.items():
            if isinstance(row, str):
                verdict = "not available" if name.startswith("refindex") else row
                print(f"{name:28} {verdict}" + (f" ({row})" if verdict != row else ""))
                continue
            print(f"{name:28} {row['seconds']:8.2f} " + " ".join(_cells(row)))
    print()
    for line in ratios(table):
        print(line)


def _cells(row: dict) -> list[str]:
    def num(key: str, width: int, form: str) -> str:
        return f"{row[key]:{width}{form}}" if row.get(key) is not None else f"{'-':>{width}}"

    size, chunks = row.get("sidecar_bytes"), row.get("chunks")
    values = "" if "exact" not in row else ("exact" if row["exact"] else "WRONG")
    detail = [f"{key.removesuffix('_seconds').replace('_', ' ')} {row[key]:.3f} s"
              for key in ("load_index_seconds", "open_seconds", "series_seconds",
                          "map_seconds", "write_seconds") if row.get(key) is not None]
    if row.get("note"):
        detail.append(f"{row['note']}; requests, bytes and memory under (c)")
    return [num("peak_mb", 8, ".0f"), num("requests", 8, ".0f"), num("mb", 8, ".1f"),
            num("sidecar_bytes", 10, ",.0f"),
            f"{size / chunks:7.1f}" if size and chunks else f"{'-':>7}", f"{values:>6}",
            " " + "; ".join(detail)]


def ratios(table: dict) -> list[str]:
    """The figures the targets name: refindex against each tool."""
    scan, _, both, read = (table[key] for key in table)
    ours = {name: row for name, row in both.items() if name.startswith("refindex")}
    lines = []
    for our_name, mine in ours.items():
        if not isinstance(mine, dict):
            continue
        for name, theirs in both.items():
            if name.startswith(("kerchunk", "virtualizarr")) and isinstance(theirs, dict):
                speed, memory = theirs["seconds"] / mine["seconds"], (
                    theirs["peak_mb"] / mine["peak_mb"])
                lines.append(
                    f"scan + combine, {our_name} vs {name}: {speed:.1f}x faster "
                    f"(target 10x: {_met(speed >= 10)}); peak memory 1/{memory:.1f} "
                    f"(target 1/10: {_met(memory >= 10)})")
    mine = next((row for name, row in read.items() if name.startswith("refindex")), None)
    if isinstance(mine, dict):
        for name, theirs in read.items():
            if name.startswith("refindex") or not isinstance(theirs, dict):
                continue
            speed = theirs["series_seconds"] / mine["series_seconds"]
            opened = (theirs["open_seconds"] + theirs["series_seconds"]) / (
                mine["open_seconds"] + mine["series_seconds"])
            target = f" (target 10x: {_met(speed >= 10)})" if "open_mfdataset" in name else ""
            lines.append(f"point series, refindex vs {name}: {speed:.1f}x faster{target}; "
                         f"open + series {opened:.1f}x")
        combined = next((row for name, row in both.items() if name == "refindex"), None)
        if isinstance(combined, dict):
            per_chunk = combined["sidecar_bytes"] / combined["chunks"]
            lines.append(f"combined sidecar: {combined['sidecar_bytes']:,.0f} B for "
                         f"{combined['chunks']:,.0f} chunks = {per_chunk:.2f} B/chunk (target "
                         f"8: {_met(per_chunk <= 8)}); load_index "
                         f"{mine['load_index_seconds']:.3f} s (target 0.1 s: "
                         f"{_met(mine['load_index_seconds'] <= 0.1)})")
    return lines


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _brief(result: dict) -> str:
    if "error" in result:
        return f"failed: {result['error']}"
    return ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                     for k, v in result.items())


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000, help="daily files (default 1000)")
    parser.add_argument("--data-dir", help="where the files are kept (default "
                                           "benchmarks/.data/combine-<files>)")
    parser.add_argument("--latency", type=float, default=20.0, help="ms per request (20)")
    parser.add_argument("--bandwidth", type=float, default=1000.0,
                        help="Mbit/s each way (1000)")
    parser.add_argument("--repeat", type=int, default=None,
                        help="runs per tool, medians reported (default 3 up to 2,000 files, "
                             "else 1)")
    parser.add_argument("--tools", default=",".join(TOOLS),
                        help="comma-separated, each TOOL or TOOL:PARALLEL (serial, threads[=N],"
                             " processes[=N], dask; VirtualiZarr also lithops)")
    # kerchunk's examples use 300; a time chunk here is 4,096 bytes, and MultiZarrToZarr
    # then fetches it twice per file, one file after another (100 files: +5 s). Inlined, as
    # refindex inlines coordinates, it needs none: kerchunk at its fastest.
    parser.add_argument("--kerchunk-inline", type=int, default=5000, metavar="BYTES",
                        help="SingleHdf5ToZarr's inline_threshold (default 5000)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per step")
    parser.add_argument("--keep", action="store_true",
                        help="keep the S3 server's data next to the files (no upload next time)")
    parser.add_argument("--step", nargs=3, metavar=("TOOL", "STEP", "OPTION"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        tool, step, option = args.step
        run_step(tool, step, "" if option == "-" else option, Path(args.work), args.endpoint)
        return
    if args.repeat is None:
        args.repeat = 3 if args.files <= 2000 else 1
    run(args, [Tool(spec) for spec in args.tools.split(",") if spec])


if __name__ == "__main__":
    main()
