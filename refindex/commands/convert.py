"""``refindex convert``: rewrite a sidecar in another format or layout."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console

from refindex.commands import SUMMARIES, exit_codes
from refindex.commands.read_arguments import add_read_arguments, read_options_from
from refindex.commands.scan import add_format_arguments
from refindex.sidecar import load_index, write_index

HELP = """\
Read a sidecar — refindex's native format (a file or a directory), kerchunk reference JSON
(version 0 or 1), or a kerchunk parquet reference directory (.zmetadata and refs.N.parq files),
detected from the content — and write the same references in the format asked for. Every
reference, inline chunk, attribute and source is kept exactly.
"""


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "convert", help=SUMMARIES["convert"], description=HELP)
    parser.add_argument("input", metavar="IN", help="sidecar path or URL (a file or directory)")
    parser.add_argument("output", metavar="OUT", help="sidecar to write (a local path)")
    add_format_arguments(parser)
    add_read_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:

    console = Console(stderr=True)
    if args.format == "kerchunk" and args.layout == "directory":
        console.print("error: kerchunk reference JSON is one file; --layout directory is for "
                      "the native format")
        return exit_codes.USAGE
    started = time.perf_counter()
    index = load_index(args.input, read_options_from(args))
    written = write_index(index, Path(args.output), args.format, args.layout)
    kind = "directory" if Path(args.output).is_dir() else "file"
    console.print(f"{args.input} → {args.output} ({args.format} {kind}, {written:,} bytes): "
                  f"{len(index.arrays)} arrays, {index.chunk_count():,} chunks, "
                  f"{len(index.sources)} sources in {time.perf_counter() - started:.2f} s",
                  highlight=False, soft_wrap=True, markup=False)
    return 0
