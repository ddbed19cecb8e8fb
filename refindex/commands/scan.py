"""``refindex scan``: index containers into sidecars."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from refindex.commands.read_arguments import add_read_arguments, read_options_from
from refindex.scan import ScanOptions, ScanResult, scan
from refindex.sidecar import FORMATS, LAYOUTS, write_index
from refindex.sidecar.native import DIRECTORY_ABOVE

HELP = """\
Read only the metadata of each container (local path, s3://bucket/key or https:// URL) and
write a sidecar of references: for every chunk of every array, its source, offset and length.
S3 credentials come from the standard AWS chain; S3-compatible servers via --endpoint-url or
AWS_ENDPOINT_URL.
"""


def add_parser(commands) -> None:
    parser = commands.add_parser("scan", help="index HDF5/NetCDF files and Zarr stores (tar, zip, "
                                 "directory) into sidecars",
                                 description=HELP)
    parser.add_argument("sources", nargs="+", metavar="SOURCE",
                        help="container to scan: a path, s3://bucket/key or https:// URL")
    parser.add_argument("-o", "--output", metavar="PATH",
                        help="sidecar file (one source) or directory (several); default: "
                             "<name>.refs.json in the current directory")
    parser.add_argument("--url", help="URL readers should use for the source (e.g. its public "
                        "URL when scanning a local copy before upload); one source only")
    parser.add_argument("--max-inline", type=int, default=ScanOptions.max_inline,
                        metavar="BYTES", help="inline arrays that cannot be referenced exactly "
                        "up to this size (default %(default)s)")
    parser.add_argument("--skip-unsupported", action="store_true",
                        help="leave out (and report) larger arrays that cannot be referenced "
                             "exactly, instead of failing")
    add_format_arguments(parser)
    add_read_arguments(parser)
    parser.set_defaults(run=run)


def add_format_arguments(parser) -> None:
    """``--format`` and ``--layout`` of the sidecars a command writes."""
    parser.add_argument("--format", choices=FORMATS, default="native",
                        help="sidecar format: refindex's native format (compact, loads lazily; "
                             "default) or kerchunk reference JSON version 1 (for kerchunk, "
                             "fsspec and VirtualiZarr)")
    parser.add_argument("--layout", choices=LAYOUTS, default="auto",
                        help="native format only: one file, or a directory of files (index.json "
                             "and one file per chunk-table part); auto (default): a directory "
                             f"above {DIRECTORY_ABOVE:,} chunks")


def run(args: argparse.Namespace) -> int:
    from refindex.cli import EXIT_USAGE, output_path

    console = Console(stderr=True)
    if args.url and len(args.sources) > 1:
        console.print("error: --url names the URL of one source; scan one source at a time")
        return EXIT_USAGE
    if args.format == "kerchunk" and args.layout == "directory":
        console.print("error: kerchunk reference JSON is one file; --layout directory is for "
                      "the native format")
        return EXIT_USAGE
    options = ScanOptions(url=args.url, max_inline=args.max_inline,
                          on_unsupported="skip" if args.skip_unsupported else "error")
    read_options = read_options_from(args)
    many = len(args.sources) > 1
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[detail]}"), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        files = progress.add_task("files", total=len(args.sources), detail="")
        for source in args.sources:
            progress.update(files, description=f"scanning {source}")
            counter = _ChunkCounter(progress, files)
            result = scan(source, options, read_options, progress=counter)
            path = output_path(source, args.output, many)
            written = write_index(result.index, path, args.format, args.layout)
            progress.advance(files)
            _report(console, result, path, written)
    return 0


class _ChunkCounter:
    def __init__(self, progress: Progress, task) -> None:
        self.progress, self.task, self.arrays, self.chunks = progress, task, 0, 0

    def __call__(self, path: str, chunks: int) -> None:
        self.arrays += 1
        self.chunks += chunks
        self.progress.update(self.task, detail=f"{self.arrays} arrays, {self.chunks} chunks")


def _report(console: Console, result: ScanResult, path, written: int) -> None:
    index = result.index
    line = (f"{result.url}: {len(index.arrays)} arrays, {index.chunk_count():,} chunks "
            f"→ {path} ({written:,} bytes) in {result.seconds:.2f} s")
    if result.requests:
        line += (f"; read {result.fetched:,} of {result.size:,} bytes "
                 f"({100 * result.fetched / max(result.size, 1):.1f}%) in {result.requests} "
                 "requests")
    console.print(line, highlight=False, soft_wrap=True, markup=False)
    for skipped in result.skipped:
        console.print(f"  skipped: {skipped}", highlight=False, soft_wrap=True, markup=False)
