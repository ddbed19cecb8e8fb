"""``refindex combine``: many sidecars (or a collection) into one dataset's sidecar."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console

from refindex.collection import collection_members, is_collection
from refindex.combine import combine
from refindex.commands import SUMMARIES
from refindex.commands.read_arguments import add_read_arguments, read_options_from
from refindex.commands.scan import (
    add_combine_arguments,
    add_format_arguments,
    combine_options_from,
)
from refindex.sidecar import write_index

HELP = """\
Combine members — sidecar files or directories, and collection directories (their members)
— into one dataset: concatenated along existing dimensions (members ordered by coordinate
values), along new dimensions from file names, merged where members hold different
variables; variables that do not vary kept once (checked identical); CF times in different
units written in one. What would make the result read differently from its members (dtype,
codecs, fill value, chunking off the combined axes, CF packing attributes) is refused, every
problem listed. Members of uneven lengths (leap years) are read exactly.
"""


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "combine", help=SUMMARIES["combine"], description=HELP)
    parser.add_argument("inputs", nargs="+", metavar="SIDECAR",
                        help="member sidecars, or collection directories")
    parser.add_argument("-o", "--output", required=True, metavar="PATH",
                        help="the combined sidecar (a file, or a directory when large)")
    add_combine_arguments(parser)
    add_format_arguments(parser)
    add_read_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    started = time.perf_counter()
    members: list = []
    for given in args.inputs:
        members.extend(collection_members(given) if is_collection(given) else [given])
    index = combine(members, combine_options_from(args), read_options_from(args))
    written = write_index(index, Path(args.output), args.format, args.layout)
    dims = ", ".join(f"{name} ({info['length']:,})"
                     for name, info in index.combined.get("dims", {}).items())
    console.print(f"combined {len(members):,} members along {dims or '-'}: "
                  f"{len(index.arrays)} arrays, {index.chunk_count():,} chunks → {args.output} "
                  f"({written:,} bytes) in {time.perf_counter() - started:.2f} s",
                  highlight=False, soft_wrap=True, markup=False)
    return 0
