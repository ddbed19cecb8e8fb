"""``refindex inspect``: what a sidecar describes."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from refindex.index import Index
from refindex.sidecar import load_index


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "inspect", help="list the arrays, chunks, bytes and sources of a sidecar",
        description="List the groups and arrays a sidecar describes (shape, dtype, chunking, "
                    "codecs, chunks present, bytes referenced and inline) and its sources.")
    parser.add_argument("sidecar", help="sidecar path or URL")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    console = Console()
    index = load_index(args.sidecar)
    console.print(arrays_table(index))
    console.print(sources_table(index))
    total = sum(a.chunks.referenced_bytes() for a in index.arrays.values())
    inline = sum(a.chunks.inline_bytes() for a in index.arrays.values())
    console.print(f"{len(index.groups)} groups, {len(index.arrays)} arrays, "
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
    table = Table(title="sources")
    for column in ("id", "url", "size", "etag", "last modified"):
        table.add_column(column)
    for i, source in enumerate(index.sources):
        table.add_row(str(i), escape(source.url), f"{source.size:,}" if source.size else "?",
                      source.etag or "-", source.last_modified or "-")
    return table


def _dtype(dtype) -> str:
    return dtype if isinstance(dtype, str) else "compound"
