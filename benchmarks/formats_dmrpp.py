"""DMR++ import vs scanning the data files: 1,000 daily NetCDF4 granules on S3 (SeaweedFS
behind the latency proxy), each with its DMR++ next to it, indexed both ways in one run.

    python benchmarks/formats_dmrpp.py --files 100 --repeat 1     # a quick look
    python benchmarks/formats_dmrpp.py --files 1000               # 20 ms, 1 Gbit/s, medians of 3

The granules are benchmarks/daily_files.py's (the combine benchmark's); their DMR++ are
written by tests/scan/dmrppfiles.py as Hyrax's build_dmrpp writes them (href: the
granule's s3:// URL). Each way is measured twice, each run cold in a fresh process: as the
collection command (``refindex scan 's3://bench/granules/*.nc' -o DIR``, and
``... '*.nc.dmrpp' ...``: a worker process per core, member sidecars written), and as the
scans alone (the same listing and member pipeline, ``collection.scanning.scan_members``, in
one process, nothing written). Reported: seconds, requests and bytes through the proxy, and
the ratio of the times; the sidecars of both are compared array by array (they must be equal) and
one granule's values read from the DMR++ sidecar are compared with netCDF4's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the benchmarks package next to refindex
    sys.path.insert(0, str(ROOT))

BUCKET, PREFIX = "bench", "granules/"
STEPS = {"scan": "*.nc", "dmrpp": "*.nc.dmrpp"}
HOWS = {"collection": "refindex scan -o DIR",
        "members": "scans alone, one process"}
TARGET = 3.0  # DMR++ import at least this many times faster than scanning
MIB = 2**20


def write_documents(paths: list[Path], directory: Path) -> list[Path]:
    """The DMR++ of each granule in ``directory``, written unless there already."""
    from tests.scan.dmrppfiles import write_dmrpp

    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for path in paths:
        document = directory / (path.name + ".dmrpp")
        if not document.exists() or document.stat().st_mtime < path.stat().st_mtime:
            write_dmrpp(path, document, href=f"s3://{BUCKET}/{PREFIX}{path.name}")
        out.append(document)
    return out


def step(kind: str, how: str, work: Path, endpoint: str) -> dict:
    """One step in this (fresh) process, timed without the imports: the granules or their
    DMR++ scanned by the collection command (``how`` "collection"), or listed and scanned
    in this one process without writing a collection (``how`` "members")."""
    pattern = f"s3://{BUCKET}/{PREFIX}{STEPS[kind]}"
    if how == "members":
        from refindex.collection.scanning import scan_members
        from refindex.collection.sources import expand_sources
        from refindex.io import ReadEngine, ReadOptions
        from refindex.scan import ScanOptions

        read_options = ReadOptions.from_env()
        started = time.perf_counter()
        sources = expand_sources([pattern], ReadEngine(read_options))
        results = scan_members(sources, ScanOptions(), read_options)
        seconds = time.perf_counter() - started
        failed = [r.error for r in results if r.error]
        if failed or len(results) != len(sources):
            raise RuntimeError(f"{len(failed)} members failed: {failed[:3]}")
        return {"seconds": seconds}
    from refindex.cli import main

    started = time.perf_counter()
    code = main(["scan", pattern, "-o", str(work / kind), "--endpoint-url", endpoint])
    seconds = time.perf_counter() - started
    if code not in (0, 4):  # 4: the arrays DMR++ cannot state are left out, reported
        raise RuntimeError(f"refindex scan exited with {code}")
    return {"seconds": seconds}


def measured(proxy, args, kind: str, how: str, work: Path) -> dict:
    from benchmarks.s3_link import measure

    env = {**os.environ, "AWS_ENDPOINT_URL": proxy.url, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, __file__, "--step", kind, how, "--work", str(work),
               "--endpoint", proxy.url]

    def run() -> dict:
        done = subprocess.run(command, env=env, capture_output=True, text=True,
                              timeout=args.timeout)
        if done.returncode:
            raise RuntimeError(f"{kind}: {done.stderr[-2000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    link, result = measure(proxy, args.latency, args.bandwidth * 1e6 / 8, run)
    return {"seconds": result["seconds"], "requests": link.requests,
            "mb": (link.bytes_down + link.bytes_up) / MIB}


def same_sidecars(work: Path) -> str:
    """Whether every member's sidecar is the same both ways (the DMR++ ones leave nothing
    out here: the granules hold numbers only)."""
    from refindex.collection.directory import CollectionDirectory
    from refindex.sidecar import parse_index

    def members(kind: str) -> dict:
        folder = CollectionDirectory(work / kind)
        found = {}
        for path in sorted((work / kind / "members").rglob("*")):
            if path.is_file():
                index = parse_index(path.read_bytes(), str(path))
                found[index.sources[0].url] = index
        del folder
        return found

    scanned, imported = members("scan"), members("dmrpp")
    if scanned.keys() != imported.keys():
        return f"members differ: {len(scanned)} scanned, {len(imported)} imported"
    for url, a in scanned.items():
        b = imported[url]
        for path, node in a.arrays.items():
            other = b.arrays.get(path)
            if other is None or other.zarray != node.zarray or other.attrs != node.attrs or any(
                    (getattr(other.chunks, c) != getattr(node.chunks, c)).any()
                    for c in ("source", "offset", "length")) or (
                    other.chunks.inline != node.chunks.inline):
                return f"{url}: {path} differs"
        if a.groups != b.groups:
            return f"{url}: group attributes differ"
    return f"equal ({len(scanned)} members)"


def values_match(work: Path, local: Path, endpoint: str) -> bool:
    import netCDF4
    import numpy as np
    import xarray as xr

    from refindex.collection.directory import CollectionDirectory  # noqa: F401
    from refindex.sidecar import parse_index, write_index

    for path in sorted((work / "dmrpp" / "members").rglob("*")):
        if path.is_file():
            index = parse_index(path.read_bytes(), str(path))
            if index.sources[0].url.endswith(local.name):
                sidecar = work / "one.json"
                write_index(index, sidecar)
                with xr.open_dataset(sidecar, engine="refindex", decode_cf=False,
                                     storage_options={"endpoint_url": endpoint}) as ds, \
                        netCDF4.Dataset(local) as nc:
                    nc.set_auto_maskandscale(False)
                    return all(np.asarray(ds[name].values).tobytes()
                               == np.asarray(nc[name][:]).tobytes()
                               for name in ("tas", "pr", "lat", "lon", "time"))
    return False


def run(args: argparse.Namespace) -> None:
    from benchmarks.daily_files import daily_files, upload
    from benchmarks.s3_link import s3_behind_link

    data_dir = Path(args.data_dir or ROOT / "benchmarks" / ".data" / f"combine-{args.files}")
    _say(f"writing or checking {args.files} granules in {data_dir} and their DMR++ ...")
    paths = daily_files(args.files, data_dir)
    documents = write_documents(paths, data_dir.with_name(data_dir.name + "-dmrpp"))
    runs: dict[tuple[str, str], list[dict]] = {(k, h): [] for h in HOWS for k in STEPS}
    with tempfile.TemporaryDirectory(prefix="refindex-dmrpp-") as scratch, \
            s3_behind_link(Path(scratch) / "s3", BUCKET) as (server, proxy):
        upload(server, paths + documents, BUCKET, PREFIX)
        _say(f"{len(paths)} granules ({sum(p.stat().st_size for p in paths) / MIB:.0f} MiB) "
             f"and their DMR++ ({sum(d.stat().st_size for d in documents) / MIB:.1f} MiB) in "
             f"s3://{BUCKET}/{PREFIX}; {args.latency:g} ms, {args.bandwidth:g} Mbit/s")
        for repeat in range(args.repeat):
            for kind, how in runs:
                work = Path(scratch) / f"run{repeat}"
                result = measured(proxy, args, kind, how, work)
                runs[kind, how].append(result)
                _say(f"  {kind} ({how}): {result['seconds']:.2f} s, {result['requests']} "
                     f"requests, {result['mb']:.1f} MB")
        work = Path(scratch) / "run0"
        proxy.configure(delay=0, bandwidth=None)
        sidecars = same_sidecars(work)
        exact = values_match(work, paths[len(paths) // 2], proxy.url)
    report(runs, args, sidecars, exact)


def report(runs: dict[tuple[str, str], list[dict]], args, sidecars: str, exact: bool) -> None:
    rows = {key: {field: statistics.median(r[field] for r in results)
                  for field in ("seconds", "requests", "mb")}
            for key, results in runs.items()}
    print(f"\n{args.files} granules, {args.latency:g} ms, {args.bandwidth:g} Mbit/s, "
          f"medians of {args.repeat}")
    print(f"{'':46} {'seconds':>9} {'requests':>9} {'MB':>9}")
    labels = {"scan": "scan the granules", "dmrpp": "import their DMR++"}
    for how, title in HOWS.items():
        for kind in STEPS:
            row = rows[kind, how]
            print(f"{labels[kind] + ', ' + title:46} {row['seconds']:9.2f} "
                  f"{row['requests']:9.0f} {row['mb']:9.1f}")
    for how, title in HOWS.items():
        scanned, imported = rows["scan", how], rows["dmrpp", how]
        ratio = scanned["seconds"] / imported["seconds"]
        met = "met" if ratio >= TARGET else "NOT met"
        print(f"{title}: DMR++ import {ratio:.1f}x faster than scanning (target >= {TARGET:g}x:"
              f" {met}); {imported['requests'] / max(scanned['requests'], 1):.1f}x the "
              f"requests, 1/{scanned['mb'] / max(imported['mb'], 1e-9):.0f} of the bytes")
    print(f"sidecars: {sidecars}; values read from a DMR++ sidecar equal netCDF4's: {exact}")


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000, help="granules (default 1000)")
    parser.add_argument("--data-dir", help="where the granules are kept (default "
                                           "benchmarks/.data/combine-<files>, shared with "
                                           "benchmarks/combine.py)")
    parser.add_argument("--latency", type=float, default=20.0, help="ms per request (20)")
    parser.add_argument("--bandwidth", type=float, default=1000.0,
                        help="Mbit/s each way (1000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, medians (3)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per step")
    parser.add_argument("--step", nargs=2, metavar=("KIND", "HOW"), help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        print(json.dumps(step(*args.step, Path(args.work), args.endpoint)))
        return
    run(args)


if __name__ == "__main__":
    main()
