"""``refindex scan``: index containers into sidecars."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from refindex.combine.options import ATTRS_POLICIES, CombineOptions
from refindex.commands import SUMMARIES, exit_codes
from refindex.commands.read_arguments import add_read_arguments, read_options_from
from refindex.scan import ScanOptions, ScanResult, scan, scan_dmrpp
from refindex.sidecar import LAYOUTS, write_index
from refindex.sidecar.native import DIRECTORY_ABOVE

HELP = """\
Read only the metadata of each container (local path, s3://bucket/key or https:// URL) and
write a sidecar of references: for every chunk of every array, its source, offset and length.
S3 credentials come from the standard AWS chain; S3-compatible servers via --endpoint-url or
AWS_ENDPOINT_URL.

One container gives one sidecar file. Several — paths, local globs ('data/**/*.nc'), URLs,
S3 prefixes ('s3://bucket/daily/'), S3 globs ('s3://bucket/*/2020-*.nc'), a file of URLs
(--from-file) — make a collection directory (-o DIR): a sidecar per member, scanned in
parallel; run again, it scans only new or changed objects and forgets deleted ones, and an
interrupted run resumes. --combine also combines the members into one dataset: DIR then
opens as it (xr.open_dataset(DIR, engine="refindex")).

An array that can be neither referenced nor inlined exactly (a type h5py cannot read, or
larger than --max-inline) is left out: the rest is indexed, the array and the reason are
reported ("left out: ...") and recorded in the sidecar, and reading it is an error naming
it; --strict makes it an error instead. Exit codes: 0 everything scanned; 1 an error; 3 some
members failed (each reported; the others are in the collection); 4 scanned, but arrays
were left out (each reported).
"""


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "scan", help=SUMMARIES["scan"],
        description=HELP)
    parser.add_argument("sources", nargs="*", metavar="SOURCE",
                        help="container(s) to scan: a path, local glob, s3://bucket/key, "
                             "s3://bucket/prefix/, S3 glob or https:// URL (none: rescan the "
                             "collection -o names with the sources it recorded)")
    parser.add_argument("-o", "--output", metavar="PATH",
                        help="sidecar file (one source) or collection directory (several); "
                             "default for one source: <name>.refs.json in the current "
                             "directory")
    parser.add_argument("--from-file", metavar="FILE",
                        help="also scan the sources listed in FILE, one per line ('-': "
                             "standard input)")
    parser.add_argument("--jobs", "-j", type=int, default=0, metavar="N",
                        help="worker processes parsing members (default: one per core)")
    parser.add_argument("--dask", metavar="ADDRESS",
                        help="scan members on the Dask cluster whose scheduler is at ADDRESS "
                             "(tcp://host:8786)")
    parser.add_argument("--fail-fast", action="store_true",
                        help="stop at the first member that cannot be scanned")
    parser.add_argument("--member-seconds", type=float, default=ScanOptions.member_seconds,
                        metavar="SECONDS",
                        help="stop a worker that spends longer on one member (reported as "
                             "failed; a damaged file can make libhdf5 loop) (default "
                             "%(default)s; 0: no limit)")
    parser.add_argument("--inline-coords", type=int, default=ScanOptions.inline_coords,
                        metavar="BYTES", help="copy dimension coordinates of up to this many "
                        "stored bytes into the sidecar (default %(default)s; 0: never)")
    parser.add_argument("--combine", action="store_true",
                        help="combine the collection's members into one dataset (see "
                             "'refindex combine --help' for the options below)")
    add_combine_arguments(parser)
    parser.add_argument("--dmrpp", action="store_true",
                        help="SOURCE is a data file (HDF5 / NetCDF4) with an OPeNDAP DMR++ "
                             "next to it (SOURCE.dmrpp): build the sidecar from the DMR++ "
                             "alone, without parsing the data file (one source only; a DMR++ "
                             "given as SOURCE is recognised without this)")
    parser.add_argument("--url", help="URL readers should use for the source (e.g. its public "
                        "URL when scanning a local copy before upload); one source only")
    parser.add_argument("--max-inline", type=int, default=ScanOptions.max_inline,
                        metavar="BYTES", help="inline arrays that cannot be referenced exactly "
                        "up to this size (default %(default)s)")
    unsupported = parser.add_mutually_exclusive_group()
    unsupported.add_argument("--strict", action="store_true",
                             help="fail on an array that cannot be indexed exactly, instead "
                                  "of leaving it out (reported, exit code 4)")
    unsupported.add_argument("--skip-unsupported", action="store_true",
                             help="leave such arrays out and report them (the default)")
    add_format_arguments(parser)
    add_read_arguments(parser)
    parser.set_defaults(run=run, parser=parser)


def add_combine_arguments(parser) -> None:
    """``--concat-dim``, ``--new-dim`` and ``--attrs`` of combining."""
    parser.add_argument("--concat-dim", action="append", default=[], metavar="DIM",
                        help="concatenate along this existing dimension, members ordered by "
                             "its coordinate values (repeat for several; default: every "
                             "dimension whose coordinate differs between members)")
    parser.add_argument("--new-dim", action="append", default=[], metavar="NAME=REGEX",
                        help="add dimension NAME whose value for a member comes from its file "
                             "name: REGEX's group NAME, else its first group, else the match")
    parser.add_argument("--attrs", choices=ATTRS_POLICIES, default="first",
                        help="differing group attributes: keep the first member's (default, "
                             "as xr.open_mfdataset), drop them, or refuse to combine")


def combine_options_from(args: argparse.Namespace) -> CombineOptions:
    try:
        return CombineOptions(
            concat_dims=tuple(args.concat_dim),
            new_dims=tuple(CombineOptions.parse_new_dim(t) for t in args.new_dim),
            attrs=args.attrs)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


SCAN_FORMATS = ("native", "kerchunk")


def add_format_arguments(parser, formats: tuple[str, ...] = SCAN_FORMATS,
                         more: str = "") -> None:
    """``--format`` (one of ``formats``) and ``--layout`` of the sidecars a command writes;
    ``more`` ends the help of ``--format``."""
    parser.add_argument("--format", choices=formats, default="native",
                        help="sidecar format: refindex's native format (compact, loads lazily; "
                             "default) or kerchunk reference JSON version 1 (for kerchunk, "
                             f"fsspec and VirtualiZarr){more}")
    parser.add_argument("--layout", choices=LAYOUTS, default="auto",
                        help="native format only: one file, or a directory of files (index.json "
                             "and one file per chunk-table part); auto (default): a directory "
                             f"above {DIRECTORY_ABOVE:,} chunks")


def run(args: argparse.Namespace) -> int:
    from refindex.cli import output_path

    console = Console(stderr=True)
    if not args.sources and not args.from_file and not args.output:
        args.parser.error("name a source to scan (or, with -o DIR, a collection to scan again)")
    collection = _is_collection_run(args)
    problem = _usage_problem(args, collection)
    if problem:
        console.print(f"error: {problem}")
        return exit_codes.USAGE
    options = ScanOptions(url=args.url, max_inline=args.max_inline,
                          on_unsupported="error" if args.strict else "skip",
                          inline_coords=args.inline_coords,
                          member_seconds=args.member_seconds or None)
    read_options = read_options_from(args)
    if collection:
        from refindex.commands.collection import run_collection

        return run_collection(args, options, read_options, console)
    source = args.sources[0]
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[detail]}"), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        files = progress.add_task(f"scanning {source}", total=1, detail="")
        counter = _ChunkCounter(progress, files)
        if args.dmrpp:
            result = scan_dmrpp(source, options, read_options, progress=counter)
        else:
            result = scan(source, options, read_options, progress=counter)
        path = output_path(source, args.output, False)
        written = write_index(result.index, path, args.format, args.layout)
        progress.advance(files)
    _report(console, result, path, written)
    return exit_codes.LEFT_OUT if result.left_out else exit_codes.OK


def _is_collection_run(args: argparse.Namespace) -> bool:
    """Several sources, a pattern or prefix, a file of them, --combine or an existing
    collection as output make a collection; one plain source, a sidecar."""
    from refindex.collection import is_collection

    if len(args.sources) != 1 or args.from_file or args.combine or args.dask:
        return True
    source = args.sources[0]
    pattern = any(c in source for c in "*?[") or (source.startswith("s3://")
                                                   and source.endswith("/"))
    return pattern or bool(args.output and is_collection(args.output))


def _usage_problem(args: argparse.Namespace, collection: bool) -> str | None:
    if args.url and collection:
        return "--url names the URL of one source; scan one source at a time"
    if args.dmrpp and collection:
        return "--dmrpp scans one data file from its DMR++; scan one source at a time"
    if args.format == "kerchunk" and args.layout == "directory":
        return "kerchunk reference JSON is one file; --layout directory is for the native format"
    if collection and not args.output:
        return "several sources make a collection: name its directory with -o DIR"
    if collection and args.format != "native":
        return ("a collection keeps native sidecars; convert members or the combined "
                "sidecar with 'refindex convert'")
    if not collection and (args.concat_dim or args.new_dim):
        return "--concat-dim and --new-dim combine a collection: add --combine"
    return None


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
    for line in left_out_lines(result.left_out):
        console.print(f"  {line}", highlight=False, soft_wrap=True, markup=False)
    if result.left_out:
        console.print(f"{len(result.left_out)} arrays left out (exit {exit_codes.LEFT_OUT}); "
                      "--strict makes this an error", highlight=False, markup=False)


def left_out_lines(left_out: dict[str, str]) -> list[str]:
    """One ``left out: /path: reason`` line per array left out."""
    return [f"left out: /{path}: {reason}" for path, reason in sorted(left_out.items())]
