"""``refindex read``: read arrays through a sidecar, verify they decode, show what it cost."""

from __future__ import annotations

import argparse
import time

import numpy as np
import zarr
from rich.console import Console
from rich.markup import escape

from refindex.assemble import region_readable
from refindex.commands import SUMMARIES
from refindex.commands.read_arguments import add_read_arguments, read_options_from
from refindex.errors import ArrayLeftOutError
from refindex.index import Index
from refindex.selection import basic_selection, is_basic
from refindex.store import open_store
from refindex.store.tuning import zarr_concurrency


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "read", help=SUMMARIES["read"],
        description="Read every array of a sidecar (or those named with --array, optionally "
                    "a selection such as 0,:,10:20) through refindex's store, and print what "
                    "was read; --stats adds the I/O engine's counters (requests, bytes, "
                    "merged ranges, retries, resolutions, cache hits, time waiting).")
    parser.add_argument("sidecar", help="sidecar path or URL")
    parser.add_argument("-a", "--array", action="append", default=[], metavar="PATH",
                        help="array to read (repeatable; default: all)")
    parser.add_argument("-s", "--select", metavar="INDEX",
                        help="NumPy-style selection applied to each array, e.g. '0,:,10:20'")
    parser.add_argument("--stats", action="store_true", help="print the I/O engine's counters")
    add_read_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    console = Console()
    with open_store(args.sidecar, read_options_from(args)) as store, \
            zarr_concurrency(store.zarr_concurrency):
        group = zarr.open_group(store, mode="r", zarr_format=2)
        paths = _array_paths(args.array, store.index, args.sidecar)
        selection = parse_selection(args.select) if args.select else ...
        started = time.perf_counter()
        total = 0
        for path in paths:
            try:
                values = _read(store, group, path, selection)
            except (IndexError, ValueError, TypeError) as exc:
                raise argparse.ArgumentTypeError(
                    f"--select {args.select!r} does not apply to /{path}: {exc}") from None
            total += values.nbytes
            console.print(f"/{escape(path)}: {values.shape} {values.dtype}, "
                          f"{values.nbytes:,} bytes", highlight=False)
        seconds = time.perf_counter() - started
        console.print(f"read {total:,} bytes of values in {seconds:.2f} s", highlight=False)
        if args.stats:
            console.print(str(store.engine.stats), highlight=False, soft_wrap=True)
    return 0


def _read(store, group, path: str, selection) -> np.ndarray:
    """``selection`` of array ``path``: by refindex's region reader where it gives what zarr
    gives (see refindex.xarray.regular), else by zarr."""
    node = store.index.arrays[path]
    if region_readable(node) and is_basic(selection):
        picked = basic_selection(selection, tuple(node.zarray["shape"]))
        return np.asarray(store.read_region_sync(path, picked.region)[picked.pick])
    return np.asarray(group[path][selection])


def _array_paths(named: list[str], index: Index, sidecar: str) -> list[str]:
    """The arrays to read: those named (each checked), else all."""
    paths = [path.strip("/") for path in named] or sorted(index.arrays)
    for path in paths:
        if path in index.left_out:
            raise ArrayLeftOutError(sidecar, path, index.left_out[path])
        if path not in index.arrays:
            raise argparse.ArgumentTypeError(f"{sidecar} has no array /{path}")
    return paths


def parse_selection(text: str) -> tuple:
    """``"0,:,10:20"`` → ``(0, slice(None), slice(10, 20))``."""
    try:
        return _selection(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--select {text!r}: integers, slices such as 2:10 "
                                         "and '...', separated by commas") from None


def _selection(text: str) -> tuple:
    parts = []
    for item in text.split(","):
        item = item.strip()
        if item in ("...", "…"):
            parts.append(Ellipsis)
        elif ":" in item:
            bounds = [int(b) if b.strip() else None for b in item.split(":")]
            parts.append(slice(*bounds))
        else:
            parts.append(int(item))
    return tuple(parts)

