"""``refindex pack``: a Zarr directory store (v2 or v3) -> a few large tar files and their
sidecar, optionally uploaded as they are packed."""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

from rich.console import Console

from refindex.commands import SUMMARIES
from refindex.commands.read_arguments import add_read_arguments
from refindex.commands.upload import (
    TransferProgress,
    add_upload_arguments,
    byte_size,
    upload_options_from,
)
from refindex.pack import FORMATS, PackOptions, PackProgress, PackResult, pack
from refindex.sidecar import LAYOUTS
from refindex.upload import UploadResult

HELP = """\
Turn a Zarr directory store, v2 or v3 (millions of small chunk files), into a few large,
uncompressed tar files of about --target-size each: metadata first, then each array's chunks
in C order of its chunk grid (a sharded v3 array's shard files, as they are, in C order of
its shard grid), members named by their Zarr keys. Writes the sidecar (native format) that
reads the tars as the store: v3 arrays as their Zarr v2 equivalents, a sharded array by its
inner chunks, so that v2-only readers read them too. With --upload s3://bucket/prefix/, each
tar is uploaded (in parallel multipart parts) while it is being packed, and the sidecar names
the uploaded objects. A rerun into the same OUT_DIR keeps the parts (and uploads) that are
still good and redoes the rest.
"""

_FLUSH_FILES = 512  # files packed between two updates of the progress bar


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "pack", help=SUMMARIES["pack"],
        description=HELP)
    parser.add_argument("store", metavar="ZARR_DIR", help="a Zarr directory store (v2 or v3)")
    parser.add_argument("-o", "--output", required=True, metavar="OUT_DIR",
                        help="folder for the tar parts, the sidecar and the resume journal")
    parser.add_argument("--target-size", type=byte_size, default=PackOptions.target_size,
                        metavar="SIZE", help="bytes of tar per part, about (default 2GB)")
    parser.add_argument("--format", choices=FORMATS, default="tar",
                        help="archive format of the parts (default tar)")
    parser.add_argument("--name", metavar="STEM",
                        help="stem of the files written (default: the store's folder name "
                             "without .zarr)")
    parser.add_argument("--sidecar", metavar="PATH",
                        help="where the sidecar goes (default OUT_DIR/<stem>.refs.json)")
    parser.add_argument("--layout", choices=LAYOUTS, default="auto",
                        help="native sidecar layout: one file, or a directory (auto: a "
                             "directory above 4,194,304 chunks)")
    parser.add_argument("--upload", metavar="S3_PREFIX",
                        help="upload each part to s3://bucket/prefix/ while it is packed")
    add_upload_arguments(parser)
    add_read_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    try:
        options = PackOptions(target_size=args.target_size, format=args.format,
                              name=args.name, upload_to=args.upload,
                              upload=upload_options_from(args), sidecar=args.sidecar,
                              layout=args.layout)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if args.upload and not args.upload.startswith("s3://"):
        raise argparse.ArgumentTypeError(f"--upload {args.upload}: expected s3://bucket/prefix/")
    with _PackBars(console, uploading=bool(args.upload)) as progress:
        result = pack(args.store, args.output, options, progress)
    _report(console, result)
    return 0


def _report(console: Console, result: PackResult) -> None:
    kept = sum(part.kept for part in result.parts)
    size = sum(part.size for part in result.parts)
    line = (f"{result.files:,} files ({result.chunks:,} chunks, {result.data_bytes:,} bytes) → "
            f"{len(result.parts)} tar parts of {size:,} bytes"
            + (f" ({kept} kept from a former run)" if kept else "")
            + f" in {result.seconds:.2f} s; sidecar {result.sidecar}")
    console.print(line, highlight=False, markup=False, soft_wrap=True)
    for note in result.skipped:
        console.print(f"warning: packed but not indexed: {note}", highlight=False,
                      markup=False, soft_wrap=True)
    if result.upload is not None:
        counters = result.upload
        console.print(f"uploaded {counters.bytes_sent:,} bytes in {counters.requests:,} "
                      f"requests ({counters.retries} retries) to "
                      f"{result.parts[0].source.url.rsplit('/', 1)[0]}/",
                      highlight=False, markup=False, soft_wrap=True)


class _PackBars(PackProgress):
    """Two Rich bars: bytes and files packed, bytes uploaded (when uploading)."""

    def __init__(self, console: Console, uploading: bool) -> None:
        self.upload = TransferProgress(console, "uploading") if uploading else None
        self.bars = self.upload or TransferProgress(console, "packing")
        self.progress = self.bars.progress
        self.packing = (self.progress.add_task("packing", total=0, files="")
                        if uploading else self.bars.task)
        self._lock = threading.Lock()
        self._files = self._bytes = self._total_files = self._shown = 0

    def __enter__(self) -> _PackBars:
        self.bars.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        self._flush()
        self.bars.__exit__(*exc_info)

    def planned(self, files: int, data_bytes: int, parts: int) -> None:
        self._total_files = files
        self.progress.update(self.packing, total=data_bytes, files=f"0/{files:,} files")

    def packed(self, files: int, nbytes: int) -> None:
        with self._lock:
            self._files += files
            self._bytes += nbytes
            due = self._files - self._shown >= _FLUSH_FILES
        if due:
            self._flush()

    def part_ready(self, name: str, size: int, kept: bool) -> None:
        self._flush()

    def started(self, path: Path, size: int) -> None:
        if self.upload is not None:
            self.upload.started(path, size)

    def sent(self, path: Path, nbytes: int) -> None:
        if self.upload is not None:
            self.upload.sent(path, nbytes)

    def finished(self, result: UploadResult) -> None:
        if self.upload is not None:
            self.upload.finished(result)

    def _flush(self) -> None:
        with self._lock:
            files, nbytes, self._bytes = self._files, self._bytes, 0
            self._shown = files
        self.progress.update(self.packing, advance=nbytes,
                             files=f"{files:,}/{self._total_files:,} files")
