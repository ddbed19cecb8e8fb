"""Icechunk and kerchunk parquet exports: refindex against VirtualiZarr, on the same files, in
one run.

    python benchmarks/interop.py export                     # volume, climate, 1,000 files
    python benchmarks/interop.py export --gib 0.25 --files 100 --only volume,collection
    python benchmarks/interop.py tables --chunks 1000000,10000000
    python benchmarks/interop.py read --rtt 20               # needs the repos from export

``export``: scan + export into a new local Icechunk repository of (a) the ``--gib`` GiB
float32 volume in 64³ chunks, (b) the NetCDF4 climate file of ``--planes`` × 1,024 chunks
(102,400 at 100 planes), (c) a collection of ``--files`` daily NetCDF4 files combined along
time. refindex: ``scan`` (``combine`` for the collection) then ``to_icechunk``; VirtualiZarr:
``open_virtual_dataset(parser=HDFParser())`` (``open_virtual_mfdataset`` for the collection)
then ``vds.vz.to_icechunk`` and a commit. Each step runs cold in a process of its own: wall
seconds and that process's peak memory (ru_maxrss). Exactness: every value read back from
each repository with icechunk + zarr, compared with netCDF4 / h5py.

``tables``: a synthetic index of N chunks of one source → ``to_icechunk`` and
``write_kerchunk_parquet`` (time, peak memory, size), then the parquet references opened
lazily by fsspec and one chunk read through them.

``read``: the volume and the climate file uploaded to SeaweedFS behind the latency proxy
(benchmarks/proxy.py; ``--rtt`` ms, ``--bandwidth`` bytes/s); refindex's store under zarr
and refindex's own region reader vs the Icechunk repository refindex exported (sources read
through the proxy by Icechunk's own client) for a full read of the volume and one plane of
the climate file, Icechunk with zarr's default chunks in flight and with 64; medians of
``--repeat``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.datasets import DATA, climate, volume  # noqa: E402

WORK = DATA / "interop"
MIB = 2**20


# --- steps, each run in a child process ------------------------------------------------------


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _files(dataset: str, args: dict) -> list[Path]:
    if dataset == "volume":
        return [volume(args["gib"])]
    if dataset == "climate":
        return [climate(args["planes"])]
    from benchmarks.daily_files import daily_files

    return daily_files(args["files"], DATA / f"daily-{args['files']}")


def step_refindex(dataset: str, repo: Path, args: dict) -> dict:
    import refindex
    from refindex.export import to_icechunk

    files = _files(dataset, args)
    started = time.perf_counter()
    if len(files) == 1:
        index = refindex.scan(str(files[0])).index
    else:
        # As `refindex scan --combine` does: members scanned in worker processes, combined.
        from refindex.collection import scan_collection
        from refindex.combine import CombineOptions

        directory = repo.with_suffix(".collection")
        shutil.rmtree(directory, ignore_errors=True)
        index = scan_collection([str(f) for f in files], directory,
                                combine_options=CombineOptions()).combined
    report = to_icechunk(index, str(repo))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_mib": _peak_mib(), "chunks": report.virtual,
            "inline": report.inline}


def step_virtualizarr(dataset: str, repo: Path, args: dict) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    import icechunk
    from obspec_utils.registry import ObjectStoreRegistry
    from obstore.store import LocalStore
    from virtualizarr import open_virtual_dataset, open_virtual_mfdataset
    from virtualizarr.parsers import HDFParser

    files = _files(dataset, args)
    folder = files[0].parent
    started = time.perf_counter()
    registry = ObjectStoreRegistry({f"file://{folder}": LocalStore(folder)})
    urls = [f"file://{f}" for f in files]
    if len(urls) == 1:
        vds = open_virtual_dataset(urls[0], registry=registry, parser=HDFParser(),
                                   loadable_variables=[])
    else:
        vds = open_virtual_mfdataset(urls, registry=registry, parser=HDFParser(),
                                     combine="nested", concat_dim="time",
                                     loadable_variables=["time", "lat", "lon"],
                                     coords="minimal", compat="override",
                                     parallel=ThreadPoolExecutor)
    config = icechunk.RepositoryConfig.default()
    config.set_virtual_chunk_container(icechunk.VirtualChunkContainer(
        f"file://{folder}/", icechunk.local_filesystem_store(str(folder))))
    repository = icechunk.Repository.create(
        icechunk.local_filesystem_storage(str(repo)), config,
        authorize_virtual_chunk_access={f"file://{folder}/": None})
    session = repository.writable_session("main")
    vds.vz.to_icechunk(session.store)
    session.commit("virtualizarr")
    seconds = time.perf_counter() - started
    chunks = sum(v.data.manifest._paths.size for v in vds.variables.values()
                 if hasattr(v.data, "manifest"))
    return {"seconds": seconds, "peak_mib": _peak_mib(), "chunks": int(chunks)}


def step_check(dataset: str, repo: Path, args: dict) -> dict:
    """Every value of the repository against netCDF4 / h5py."""
    import zarr

    from refindex.export import open_icechunk

    files = _files(dataset, args)
    group = zarr.open_group(open_icechunk(str(repo)).readonly_session("main").store,
                            mode="r")
    started = time.perf_counter()
    wrong = []
    if dataset == "volume":
        import h5py

        with h5py.File(files[0]) as f:
            expected = f["volume"][...]
        same = np.array_equal(group["volume"][...], expected)
        wrong += [] if same else ["volume"]
    elif dataset == "climate":
        import netCDF4

        with netCDF4.Dataset(files[0]) as nc:
            nc.set_auto_maskandscale(False)
            for name in ("tas", "time", "lat", "lon"):
                if not np.array_equal(group[name][...], nc[name][...]):
                    wrong.append(name)
    else:
        import netCDF4

        arrays = {name: group[name][...] for name in ("tas", "pr", "time", "lat", "lon")}
        for day, path in enumerate(files):  # in time order
            with netCDF4.Dataset(path) as nc:
                nc.set_auto_maskandscale(False)
                for name in ("tas", "pr", "time"):
                    if not np.array_equal(arrays[name][day], nc[name][0]):
                        wrong.append(f"{name}[{day}]")
                if day == 0:
                    wrong += [n for n in ("lat", "lon")
                              if not np.array_equal(arrays[n], nc[n][...])]
    return {"seconds": time.perf_counter() - started, "wrong": wrong}


def step_table(chunks: int, target: Path, kind: str) -> dict:
    """A synthetic index of ``chunks`` chunks → Icechunk or kerchunk parquet."""
    from refindex.index import ArrayNode, ChunkTable, Index, Source

    source = target.parent / "source.bin"
    source.write_bytes(b"\0" * 4096)
    table = ChunkTable((chunks,))
    table.source[:] = 0
    table.offset[:] = np.arange(chunks, dtype=np.int64) % 1024 * 4
    table.length[:] = 4
    index = Index(sources=[Source(str(source), 4096, None, "2026-01-01T00:00:00+00:00")])
    index.arrays["x"] = ArrayNode("x", {"zarr_format": 2, "shape": [chunks], "chunks": [1],
                                       "dtype": "<f4", "compressor": None, "filters": None,
                                       "fill_value": 0, "order": "C"}, {}, table)
    before = _peak_mib()
    started = time.perf_counter()
    if kind == "icechunk":
        from refindex.export import to_icechunk

        to_icechunk(index, str(target))
    else:
        from refindex.sidecar.kerchunk_parquet import write_kerchunk_parquet

        write_kerchunk_parquet(index, target)
    seconds = time.perf_counter() - started
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    result = {"seconds": seconds, "peak_mib": _peak_mib(), "table_mib": before, "bytes": size}
    if kind == "parquet":
        import fsspec

        started = time.perf_counter()
        fs = fsspec.filesystem("reference", fo=str(target), remote_protocol="file", lazy=True)
        data = fs.cat(f"x/{chunks - 1}")
        result["lazy_first_read_s"] = time.perf_counter() - started
        assert data == b"\0" * 4
    return result


def step_read(tool: str, dataset: str, target: str, endpoint: str, args: dict) -> dict:
    import zarr

    os.environ["AWS_ENDPOINT_URL"] = endpoint
    name, index = (("volume", ...) if dataset == "volume" else ("tas", (args["planes"] // 2,)))
    started = time.perf_counter()
    if tool == "refindex":
        import refindex
        from refindex.store.tuning import zarr_concurrency

        store = refindex.open_store(target, endpoint_url=endpoint)
        with zarr_concurrency(store.zarr_concurrency):
            values = zarr.open_group(store, mode="r", zarr_format=2)[name][index]
    elif tool == "refindex:region":  # refindex's own reader (the xarray backend's, `read`'s)
        import refindex

        store = refindex.open_store(target, endpoint_url=endpoint)
        shape = store.index.arrays[name].zarray["shape"]
        region = tuple(slice(0, n) for n in shape) if index is ... else (
            slice(index[0], index[0] + 1), *(slice(0, n) for n in shape[1:]))
        values = store.read_region_sync(name, region)
    else:
        from refindex.export import open_icechunk
        from refindex.io.options import ReadOptions

        repo = open_icechunk(target, ReadOptions(endpoint_url=endpoint))
        # "icechunk:N": zarr's async.concurrency N (chunks in flight), else zarr's default.
        concurrency = int(tool.partition(":")[2] or zarr.config.get("async.concurrency"))
        with zarr.config.set({"async.concurrency": concurrency}):
            group = zarr.open_group(repo.readonly_session("main").store, mode="r")
            values = group[name][index]
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_mib": _peak_mib(), "sum": float(np.sum(values,
                                                                              dtype="f8"))}


def _child(kind: str, *params) -> dict:
    """Run one step in a fresh interpreter; its JSON result."""
    command = [sys.executable, __file__, "_step", kind, json.dumps(params)]
    done = subprocess.run(command, capture_output=True, text=True, env={
        **os.environ, "PYTHONPATH": str(ROOT), "RUST_LOG": "error"})
    if done.returncode:
        return {"error": (done.stderr.strip().splitlines() or ["?"])[-1][:200]}
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the three runs ----------------------------------------------------------------------


def run_export(args) -> None:
    settings = {"gib": args.gib, "planes": args.planes, "files": args.files}
    print(f"export into Icechunk (settings {settings}); seconds, peak MiB, chunks, exact")
    for dataset in args.only:
        for tool in args.tools:
            repo = WORK / f"{dataset}-{tool}.icechunk"
            shutil.rmtree(repo, ignore_errors=True)
            made = _child(tool, dataset, str(repo), settings)
            if "error" in made:
                print(f"  {dataset:10} {tool:12} failed: {made['error']}", flush=True)
                continue
            checked = _child("check", dataset, str(repo), settings) if args.check else {}
            exact = ("not checked" if not checked else "error: " + checked["error"]
                     if "error" in checked else "exact" if not checked["wrong"]
                     else f"WRONG {checked['wrong']}")
            print(f"  {dataset:10} {tool:12} {made['seconds']:8.2f} s "
                  f"{made['peak_mib']:8.0f} MiB {made['chunks']:>9,} chunks  {exact}",
                  flush=True)


def run_tables(args) -> None:
    print("synthetic tables: seconds, peak MiB of the process (of which the index), bytes")
    for chunks in args.chunks:
        for kind in ("icechunk", "parquet"):
            target = WORK / f"table-{chunks}.{kind}"
            shutil.rmtree(target, ignore_errors=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            made = _child("table", chunks, str(target), kind)
            if "error" in made:
                print(f"  {chunks:>11,} {kind:9} failed: {made['error']}", flush=True)
                continue
            lazy = (f", fsspec lazy open + one read {made['lazy_first_read_s']:.2f} s"
                    if "lazy_first_read_s" in made else "")
            print(f"  {chunks:>11,} {kind:9} {made['seconds']:8.2f} s {made['peak_mib']:7.0f} "
                  f"MiB (index {made['table_mib']:.0f}) {made['bytes'] / MIB:8.1f} MiB{lazy}",
                  flush=True)
            shutil.rmtree(target, ignore_errors=True)


def run_read(args) -> None:
    import refindex
    from benchmarks.s3_link import s3_behind_link
    from refindex.export import IcechunkOptions, to_icechunk
    from refindex.io.options import ReadOptions

    settings = {"gib": args.gib, "planes": args.planes, "files": args.files}
    WORK.mkdir(parents=True, exist_ok=True)
    with s3_behind_link(WORK / "s3", "bench") as (server, proxy):
        endpoint = f"http://127.0.0.1:{proxy.port}"
        print(f"reads through the proxy ({args.rtt} ms, {args.bandwidth / 1e6:.0f} MB/s), "
              f"medians of {args.repeat}: seconds, peak MiB")
        for dataset in args.only:
            if dataset == "collection":
                continue
            path = _files(dataset, settings)[0]
            url = server.upload(path, "bench", path.name)
            proxy.configure(delay=0, bandwidth=None)
            options = ReadOptions.from_env().replace(endpoint_url=endpoint)
            index = refindex.scan(url, read_options=options).index
            sidecar = WORK / f"{dataset}-s3.json"
            refindex.write_index(index, sidecar)
            repo = WORK / f"{dataset}-s3.icechunk"
            shutil.rmtree(repo, ignore_errors=True)
            to_icechunk(index, str(repo), IcechunkOptions(), options)
            proxy.configure(delay=args.rtt / 1000, bandwidth=args.bandwidth)
            sums = {}
            for tool, target in (("refindex", str(sidecar)), ("refindex:region", str(sidecar)),
                                 ("icechunk", str(repo)), ("icechunk:64", str(repo))):
                runs = [_child("read", tool, dataset, target, endpoint, settings)
                        for _ in range(args.repeat)]
                failed = [r for r in runs if "error" in r]
                if failed:
                    print(f"  {dataset:8} {tool:9} failed: {failed[0]['error']}", flush=True)
                    continue
                sums[tool] = runs[0]["sum"]
                print(f"  {dataset:8} {tool:9} "
                      f"{statistics.median(r['seconds'] for r in runs):7.2f} s "
                      f"{max(r['peak_mib'] for r in runs):7.0f} MiB", flush=True)
            if len(set(sums.values())) > 1:
                print(f"  {dataset}: the two reads differ: {sums}")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "_step":
        warnings.simplefilter("ignore")
        kind, params = sys.argv[2], json.loads(sys.argv[3])
        step = {"refindex": step_refindex, "virtualizarr": step_virtualizarr,
                "check": step_check, "table": step_table, "read": step_read}[kind]
        if kind in ("refindex", "virtualizarr", "check"):
            params[1] = Path(params[1])
        if kind == "table":
            params[1] = Path(params[1])
        print(json.dumps(step(*params)))
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", choices=("export", "tables", "read"))
    parser.add_argument("--gib", type=float, default=1.0, help="volume size (default 1 GiB)")
    parser.add_argument("--planes", type=int, default=100,
                        help="climate planes of 1,024 chunks (default 100: 102,400 chunks)")
    parser.add_argument("--files", type=int, default=1000, help="daily files (default 1,000)")
    parser.add_argument("--only", type=lambda s: s.split(","),
                        default=["volume", "climate", "collection"])
    parser.add_argument("--tools", type=lambda s: s.split(","),
                        default=["refindex", "virtualizarr"])
    parser.add_argument("--no-check", dest="check", action="store_false",
                        help="export: do not read every value back")
    parser.add_argument("--chunks", type=lambda s: [int(c) for c in s.split(",")],
                        default=[1_000_000, 10_000_000])
    parser.add_argument("--rtt", type=float, default=20.0, help="round trip, ms")
    parser.add_argument("--bandwidth", type=float, default=125e6, help="bytes/s (1 Gbit/s)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    {"export": run_export, "tables": run_tables, "read": run_read}[args.run](args)


if __name__ == "__main__":
    main()
