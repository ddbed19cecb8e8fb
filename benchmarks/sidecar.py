"""Sidecars of 1, 10 and 50 million chunks: refindex's native format against kerchunk JSON and
kerchunk parquet, on the same synthetic index.

    python benchmarks/sidecar.py                    # 1M, 10M and 50M chunks (minutes)
    python benchmarks/sidecar.py --sizes 1 10       # millions of chunks
    python benchmarks/sidecar.py --sources 1 1000   # one source, then a thousand

The index is what a scan of a large archive gives: one 3-D array holding 94% of the chunks
and two smaller ones, spread over ``--sources`` files, each file's chunks back to back in
grid order after a header, compressed lengths varying around 100 KB, 1% of chunks never
written. Each format is written once and then measured in a fresh Python process per
format (so that memory is its alone), as a reader uses it: refindex opens the native
sidecar; fsspec's ReferenceFileSystem (what kerchunk users read with) opens kerchunk JSON
and kerchunk parquet (record size ``--record-size``, as ``kerchunk.df.refs_to_dataframe``
and fsspec's ``LazyReferenceMapper`` write it). Printed: bytes on disk (and per chunk),
seconds to open, seconds to the first chunk's reference, resident memory after opening and
after loading every reference of the largest array (bytes per chunk of the whole index and
of that array), and the mean time of a random key lookup: cold (right after opening, so
including what the lookups decode or load) and warm (once the array is loaded). Kerchunk
JSON is skipped above ``--max-json`` million chunks: it would need more memory than this
machine has.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from refindex.index import ABSENT, ArrayNode, ChunkTable, Index, Source  # noqa: E402

BIG = "data"  # the largest array
SEED = 5


# --- the synthetic index ----------------------------------------------------------------

def synthetic_index(chunks: int, sources: int, seed: int = SEED) -> Index:
    """About ``chunks`` chunk references over ``sources`` files (see the module docstring)."""
    rng = np.random.default_rng(seed)
    index = Index(sources=[Source(f"s3://archive/run-{i:04d}.h5", None, f'"{i:032x}"')
                           for i in range(sources)],
                  generator={"name": "benchmarks/sidecar.py", "scanned_at": "2026-11-22T00:00:00Z"})
    big = round(chunks * 0.94)
    grids = {BIG: (max(1, big // 4096), 64, 64),
             "mask": (max(1, chunks * 3 // 100 // 64), 64),
             "quality": (max(1, chunks * 3 // 100 // 64), 64)}
    shapes = {BIG: [100, 100, 100], "mask": [100, 100], "quality": [100, 100]}
    runs = np.array_split(np.arange(sources), len(grids))  # each array in its own files
    for (path, grid), files in zip(grids.items(), runs, strict=True):
        table = _table(grid, files if len(files) else np.array([0]), rng)
        shape = [g * c for g, c in zip(grid, shapes[path], strict=True)]
        zarray = {"zarr_format": 2, "shape": shape, "chunks": shapes[path], "dtype": "<f4",
                  "compressor": {"id": "zlib", "level": 4}, "filters": None,
                  "fill_value": "NaN", "order": "C"}
        index.arrays[path] = ArrayNode(path, zarray, {"units": "K"}, table)
    return index


def _table(grid: tuple[int, ...], files: np.ndarray, rng: np.random.Generator) -> ChunkTable:
    table = ChunkTable(grid)
    count = len(table)
    lengths = np.clip(rng.lognormal(np.log(100_000), 0.5, count), 1_000, 1 << 20).astype(np.int64)
    owner = np.repeat(files, -(-count // len(files)))[:count]  # contiguous runs per file
    # Within a file, chunks lie back to back after a 4 KiB header; a small gap now and then
    # (a B-tree node between chunks).
    gaps = np.where(rng.random(count) < 0.01, rng.integers(0, 4096, count), 0)
    ends = np.cumsum(lengths + gaps)
    first = np.r_[0, np.flatnonzero(np.diff(owner)) + 1]
    run_start = np.repeat(ends[first] - lengths[first] - gaps[first],
                          np.diff(np.r_[first, count]))
    table.source[:] = owner
    table.offset[:] = 4096 + ends - lengths - run_start
    table.length[:] = lengths
    table.source[rng.random(count) < 0.01] = ABSENT
    table.offset[table.source == ABSENT] = 0
    table.length[table.source == ABSENT] = 0
    return table


# --- writing each format ----------------------------------------------------------------

def write_all(index: Index, workdir: Path, record_size: int, max_json: float) -> dict:
    from refindex.sidecar import write_index

    paths = {}
    started = time.perf_counter()
    paths["native"] = workdir / "native.refs"
    write_index(index, paths["native"], format="native")
    print(f"  wrote native in {time.perf_counter() - started:.1f} s", flush=True)
    if index.chunk_count() <= max_json * 1e6:
        started = time.perf_counter()
        paths["kerchunk JSON"] = workdir / "kerchunk.json"
        write_plain_kerchunk(index, paths["kerchunk JSON"])
        print(f"  wrote kerchunk JSON in {time.perf_counter() - started:.1f} s", flush=True)
    started = time.perf_counter()
    paths["kerchunk parquet"] = workdir / "kerchunk.parq"
    write_parquet(index, paths["kerchunk parquet"], record_size)
    print(f"  wrote kerchunk parquet in {time.perf_counter() - started:.1f} s", flush=True)
    return paths


def write_plain_kerchunk(index: Index, path: Path) -> None:
    """kerchunk reference JSON as kerchunk's own scanners write it: every reference with its
    URL spelled out (refindex's writer uses ``templates``, which fsspec renders key by key
    when it opens the file, many times slower)."""
    import ujson

    from refindex.sidecar.kerchunk_json import to_kerchunk

    doc = to_kerchunk(index)
    names = {"{{" + name + "}}": url for name, url in doc.pop("templates", {}).items()}
    for value in doc["refs"].values():
        if isinstance(value, list) and value and value[0] in names:
            value[0] = names[value[0]]
    path.write_text(ujson.dumps(doc, escape_forward_slashes=False))


def write_parquet(index: Index, root: Path, record_size: int) -> None:
    """kerchunk's parquet references, laid out as fsspec's LazyReferenceMapper writes them:
    ``.zmetadata`` ({"metadata", "record_size"}) and per array ``refs.<record>.parq`` with
    columns path (categorical), offset, size, raw, one row per chunk in grid order. Written
    from the columns directly: kerchunk's writers take a dict of every reference, which at
    tens of millions of chunks does not fit in memory."""
    import pandas as pd

    from refindex.store.reference import metadata_documents

    root.mkdir(parents=True, exist_ok=True)
    documents = {k: json.loads(v) for k, v in metadata_documents(index).items()
                 if k != ".zmetadata"}
    (root / ".zmetadata").write_text(json.dumps({"metadata": documents,
                                                 "record_size": record_size}))
    urls = np.array([s.url for s in index.sources] + [None], dtype=object)
    for path, node in index.arrays.items():
        (root / path).mkdir(parents=True, exist_ok=True)
        table = node.chunks
        for record in range(math.ceil(len(table) / record_size)):
            rows = slice(record * record_size, (record + 1) * record_size)
            source = table.source[rows]
            ids = np.where(source >= 0, source, len(urls) - 1)
            count = len(source)
            frame = pd.DataFrame({
                "path": pd.Categorical(urls[ids]),
                "offset": table.offset[rows], "size": table.length[rows],
                "raw": np.full(count, None, dtype=object)})
            if count < record_size:  # the last record is padded, as fsspec writes it
                frame = frame.reindex(range(record_size))
            frame.to_parquet(root / path / f"refs.{record}.parq", engine="pyarrow",
                             compression="zstd", index=False, write_statistics=False)


# --- measuring one format, in a process of its own ---------------------------------------

def measure(fmt: str, path: str, keys: list[str]) -> dict:
    """Open, first lookup, memory and random lookups of one sidecar (run in a subprocess)."""
    import gc

    if fmt == "native":
        import refindex.sidecar  # noqa: F401 (imports before the baseline)
    else:
        import fsspec
        import fsspec.implementations.reference  # noqa: F401
        import pandas  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    gc.collect()
    base = _rss()
    started = time.perf_counter()
    lookup, load_array, chunks = _opener(fmt, path)()
    opened = time.perf_counter() - started
    rss_open = _rss() - base
    lookup(keys[0])
    first = time.perf_counter() - started
    started = time.perf_counter()
    for key in keys[1:]:
        lookup(key)
    cold = (time.perf_counter() - started) / max(1, len(keys) - 1)
    array_chunks = load_array()
    gc.collect()
    rss_array = _rss() - base
    started = time.perf_counter()
    for key in keys:
        lookup(key)
    warm = (time.perf_counter() - started) / len(keys)
    return {"open": opened, "first": first, "rss_open": rss_open, "rss_array": rss_array,
            "cold": cold, "warm": warm, "chunks": chunks, "array_chunks": array_chunks}


def _opener(fmt: str, path: str):
    if fmt == "native":
        def open_native():
            from refindex.sidecar import load_index

            index = load_index(path)

            def lookup(key):
                node, coords = index.find_chunk(key)
                return node.chunks.get(node.chunks.flat_index(coords))

            def load_array():
                table = index.arrays[BIG].chunks
                table.columns(0, len(table))  # every part decoded
                return len(table)
            return lookup, load_array, index.chunk_count()
        return open_native

    def open_fsspec():
        import fsspec

        fs = fsspec.filesystem("reference", fo=path, remote_protocol="file",
                               skip_instance_cache=True)
        refs = fs.references

        def lookup(key):
            return refs[key]

        def load_array():
            if hasattr(refs, "open_refs"):  # parquet: every record of the array
                size = refs.record_size
                count = math.prod(refs._get_chunk_sizes(BIG))
                for record in range(math.ceil(count / size)):
                    refs.open_refs(BIG, record)
                return count
            return sum(1 for k in refs if k.startswith(BIG + "/"))
        return lookup, load_array, len(refs)
    return open_fsspec


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _measure_in_subprocess(fmt: str, path: Path, keys: list[str]) -> dict | str:
    payload = json.dumps({"format": fmt, "path": str(path), "keys": keys})
    done = subprocess.run([sys.executable, __file__, "--measure"], input=payload,
                          capture_output=True, text=True)
    if done.returncode:
        return done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"
    return json.loads(done.stdout.strip().splitlines()[-1])


def _disk_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# --- the run ----------------------------------------------------------------------------

def run(args: argparse.Namespace) -> None:
    for sources in args.sources:
        for millions in args.sizes:
            chunks = int(millions * 1e6)
            started = time.perf_counter()
            index = synthetic_index(chunks, sources)
            total = index.chunk_count()
            print(f"\n## {total:,} chunks in {sources:,} sources "
                  f"(built in {time.perf_counter() - started:.1f} s)", flush=True)
            keys = _random_keys(index, args.lookups)
            workdir = Path(tempfile.mkdtemp(prefix="refindex-sidecar-bench-"))
            try:
                paths = write_all(index, workdir, args.record_size, args.max_json)
                del index
                _report(paths, keys, total)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)


def _random_keys(index: Index, count: int) -> list[str]:
    node = index.arrays[BIG]
    rng = np.random.default_rng(SEED)
    flats = rng.choice(node.chunks.present(), count)  # kerchunk has no keys for absent ones
    return node.chunk_keys(flats)


def _report(paths: dict, keys: list[str], total: int) -> None:
    print(f"  {'format':17} {'on disk':>10} {'B/chunk':>8} {'open s':>7} {'first s':>8} "
          f"{'RSS open':>9} {'B/chunk':>8} {'RSS array':>10} {'B/chunk':>8} {'cold':>9} "
          f"{'warm':>8}")
    results = {}
    for fmt, path in paths.items():
        size = _disk_bytes(path)
        measured = _measure_in_subprocess(fmt.split()[-1] if fmt != "native" else "native",
                                          path, keys)
        if isinstance(measured, str):
            print(f"  {fmt:17} {size / 1e6:8.1f}MB failed: {measured[:100]}")
            continue
        results[fmt] = (size, measured)
        m = measured
        print(f"  {fmt:17} {size / 1e6:8.1f}MB {size / total:8.2f} {m['open']:7.3f} "
              f"{m['first']:8.3f} {m['rss_open'] / 1e6:7.0f}MB {m['rss_open'] / total:8.1f} "
              f"{m['rss_array'] / 1e6:8.0f}MB {m['rss_array'] / m['array_chunks']:8.1f} "
              f"{m['cold'] * 1e6:7.1f}µs {m['warm'] * 1e6:6.1f}µs", flush=True)
    if "native" in results:
        size, native = results["native"]
        for fmt, (other_size, other) in results.items():
            if fmt == "native":
                continue
            print(f"  native vs {fmt}: {other_size / size:.1f}x smaller, "
                  f"{other['open'] / native['open']:.1f}x faster to open, "
                  f"{max(other['rss_open'], 1) / max(native['rss_open'], 1):.1f}x less memory "
                  f"open, {max(other['rss_array'], 1) / max(native['rss_array'], 1):.1f}x "
                  "with the array loaded")


def main() -> None:
    if sys.argv[1:] == ["--measure"]:
        job = json.loads(sys.stdin.read())
        print(json.dumps(measure(job["format"], job["path"], job["keys"])))
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 10, 50],
                        help="millions of chunks (default: 1 10 50)")
    parser.add_argument("--sources", type=int, nargs="+", default=[1000],
                        help="number of source files (default 1000)")
    parser.add_argument("--record-size", type=int, default=100_000,
                        help="rows per kerchunk parquet file (default 100000)")
    parser.add_argument("--max-json", type=float, default=10,
                        help="largest index, in millions of chunks, written as kerchunk JSON")
    parser.add_argument("--lookups", type=int, default=10_000,
                        help="random keys looked up (default 10000)")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
