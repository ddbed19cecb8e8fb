"""``refindex convert``: rewrite a sidecar in another format or layout, or export it into an
Icechunk repository."""

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
reference, inline chunk, attribute and source is kept exactly. --format kerchunk-parquet
writes a parquet reference directory fsspec reads lazily; --format icechunk writes every array
into the Icechunk repository OUT (a local path or s3:// prefix, made when absent) and commits
it on --branch: chunk references as virtual references checked against each source's ETag or
last-modified time, inline chunks as real chunks.
"""

FORMATS = ("native", "kerchunk", "kerchunk-parquet", "icechunk")


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "convert", help=SUMMARIES["convert"], description=HELP)
    parser.add_argument("input", metavar="IN", help="sidecar path or URL (a file or directory)")
    parser.add_argument("output", metavar="OUT",
                        help="sidecar to write (a local path), or with --format icechunk the "
                             "repository (a local path or s3://bucket/prefix)")
    add_format_arguments(parser, FORMATS,
                         more=", a kerchunk parquet reference directory, or an Icechunk "
                              "repository")
    parser.add_argument("--branch", default="main",
                        help="icechunk: the branch to commit on (made from main when new; "
                             "default main)")
    parser.add_argument("--message", "-m", default=None,
                        help="icechunk: the commit message (default: one counting the arrays "
                             "and chunks written)")
    parser.add_argument("--skip-unsupported", action="store_true",
                        help="icechunk: leave out (and name) arrays with no exact Zarr v3 form "
                             "instead of stopping before anything is written")
    add_read_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    problem = _usage_problem(args)
    if problem:
        console.print(f"error: {problem}", highlight=False, markup=False)
        return exit_codes.USAGE
    started = time.perf_counter()
    options = read_options_from(args)
    index = load_index(args.input, options)
    if args.format == "icechunk":
        return _export(console, args, index, options)
    written = write_index(index, Path(args.output), args.format, args.layout)
    kind = "directory" if Path(args.output).is_dir() else "file"
    console.print(f"{args.input} → {args.output} ({args.format} {kind}, {written:,} bytes): "
                  f"{len(index.arrays)} arrays, {index.chunk_count():,} chunks, "
                  f"{len(index.sources)} sources in {time.perf_counter() - started:.2f} s",
                  highlight=False, soft_wrap=True, markup=False)
    return 0


def _usage_problem(args: argparse.Namespace) -> str | None:
    if args.format == "kerchunk" and args.layout == "directory":
        return ("kerchunk reference JSON is one file; --layout directory is for the native "
                "format")
    if args.format in ("kerchunk-parquet", "icechunk") and args.layout == "file":
        return f"--format {args.format} writes a directory; --layout file is for the native format"
    if args.format != "icechunk" and (args.branch != "main" or args.message is not None
                                      or args.skip_unsupported):
        return "--branch, --message and --skip-unsupported are for --format icechunk"
    if args.format != "icechunk" and "://" in args.output and not args.output.startswith(
            "file://"):
        return f"{args.output}: sidecars are written to local paths"
    return None


def _export(console: Console, args: argparse.Namespace, index, options) -> int:
    from refindex.export import IcechunkOptions, to_icechunk

    on_unsupported = "skip" if args.skip_unsupported else "error"
    report = to_icechunk(index, args.output, IcechunkOptions(
        args.branch, args.message, on_unsupported=on_unsupported), options)
    for path, reason in report.skipped.items():
        console.print(f"skipped: /{path}: {reason}", highlight=False, soft_wrap=True,
                      markup=False)
    appended = (f"; appended to {len(report.appended)} arrays" if report.appended else "")
    left_out = (f"; {len(report.left_out)} arrays left out by the scan"
                if report.left_out else "")
    if report.skipped:
        left_out += f"; {len(report.skipped)} arrays skipped"
    console.print(f"{args.input} → {args.output} (icechunk, branch {report.branch}, snapshot "
                  f"{report.snapshot}): {report.arrays} arrays, {report.virtual:,} virtual and "
                  f"{report.inline:,} inline chunks written{appended}{left_out} in "
                  f"{report.seconds:.2f} s", highlight=False, soft_wrap=True, markup=False)
    return 0
