"""``refindex inspect``: what a sidecar describes."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from refindex.collection.directory import CollectionDirectory, is_collection
from refindex.commands import SUMMARIES
from refindex.commands.read_arguments import add_read_arguments, read_options_from
from refindex.index import Index
from refindex.sidecar import load_index
from refindex.sidecar.native import INDEX_FILE

_SHOWN_SOURCES = 20  # sources listed in full; of more, the first and last ten


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "inspect", help=SUMMARIES["inspect"],
        description="List the groups and arrays a sidecar describes (shape, dtype, chunking, "
                    "codecs, chunks present, bytes referenced and inline), the arrays the scan "
                    "left out (and why) and its sources; for "
                    "a combined dataset, its members and combined dimensions; for a collection "
                    "directory not combined yet, its members and failures.")
    parser.add_argument("sidecar", help="sidecar path or URL, or a collection directory")
    add_read_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    console = Console()
    if is_collection(args.sidecar) and not (Path(args.sidecar) / INDEX_FILE).is_file():
        return _collection(console, args.sidecar)
    index = load_index(args.sidecar, read_options_from(args))
    console.print(arrays_table(index))
    console.print(sources_table(index))
    if index.combined:
        dims = ", ".join(f"{name} ({info['kind']}: {info['length']:,} long, "
                         f"{info['positions']:,} positions)"
                         for name, info in index.combined.get("dims", {}).items())
        console.print(f"combined from {index.combined.get('members', 0):,} members along "
                      f"{dims or 'no dimension'}", highlight=False)
    total = sum(a.chunks.referenced_bytes() for a in index.arrays.values())
    inline = sum(a.chunks.inline_bytes() for a in index.arrays.values())
    for path, reason in sorted(index.left_out.items()):
        console.print(f"left out: /{escape(path)}: {escape(reason)}", highlight=False)
    left_out = f", {len(index.left_out)} left out" if index.left_out else ""
    console.print(f"{len(index.groups)} groups, {len(index.arrays)} arrays{left_out}, "
                  f"{index.chunk_count():,} chunks, {total:,} bytes referenced, "
                  f"{inline:,} bytes inline", highlight=False)
    return 0


def arrays_table(index: Index) -> Table:
    table = Table(title="arrays")
    for column in ("path", "shape", "dtype", "chunks", "codecs", "present", "referenced",
                   "inline"):
        table.add_column(column, justify="right" if column in ("present", "referenced",
                                                               "inline") else "left")
    for path, node in sorted(index.arrays.items()):
        meta = node.zarray
        codecs = ",".join(f["id"] for f in (meta.get("filters") or []))
        if meta.get("compressor"):
            codecs = ",".join(filter(None, [codecs, meta["compressor"]["id"]]))
        present = f"{node.chunks.present().size}/{len(node.chunks)}"
        table.add_row(escape("/" + path), str(tuple(meta["shape"])), _dtype(meta["dtype"]),
                      str(tuple(meta["chunks"])), codecs or "-", present,
                      f"{node.chunks.referenced_bytes():,}", f"{node.chunks.inline_bytes():,}")
    return table


def sources_table(index: Index) -> Table:
    count = len(index.sources)
    table = Table(title=f"sources ({count:,})")
    for column in ("id", "url", "size", "etag", "last modified"):
        table.add_column(column)
    half = _SHOWN_SOURCES // 2
    shown = (range(count) if count <= _SHOWN_SOURCES
             else [*range(half), None, *range(count - half, count)])
    for i in shown:
        if i is None:
            table.add_row("...", f"{count - 2 * half:,} more", "", "", "")
            continue
        source = index.sources[i]
        table.add_row(str(i), escape(source.url), f"{source.size:,}" if source.size else "?",
                      source.etag or "-", source.last_modified or "-")
    return table


def _collection(console: Console, directory: str) -> int:
    state = CollectionDirectory(directory).load()
    table = Table(title=f"members ({len(state.members):,}), not combined")
    for column in ("url", "size", "arrays", "chunks"):
        table.add_column(column, justify="left" if column == "url" else "right")
    for record in state.members.values():
        table.add_row(escape(record.url), f"{record.size:,}" if record.size else "?",
                      str(record.arrays), f"{record.chunks:,}")
    console.print(table)
    for failure in state.failed.values():
        console.print(f"failed: {escape(failure.url)}: {escape(failure.error)}")
    console.print(f"{len(state.members):,} members, {len(state.failed):,} failed; combine "
                  f"them with 'refindex combine {directory} -o OUT'", highlight=False)
    return 0


def _dtype(dtype) -> str:
    return dtype if isinstance(dtype, str) else "compound"
