"""``refindex upload``: upload files in parallel multipart parts, to S3 or to presigned part
URLs, and re-stamp a sidecar with the uploaded objects."""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from refindex.commands import SUMMARIES
from refindex.commands.read_arguments import add_read_arguments, read_options_from
from refindex.errors import UploadError
from refindex.upload import (
    PresignedUpload,
    UploadOptions,
    UploadProgress,
    UploadResult,
    restamp_sidecar,
    upload_files,
)

HELP = """\
Upload files (packed tar parts, or any large HDF5/NetCDF file) in parallel multipart parts:
to s3:// with the standard AWS credential chain (--to), or to presigned part URLs an archive
handed out (--presigned, a JSON document per file: see docs/pack-and-upload.md). Each part
is sent with its MD5 and retried on failure; each object is checked (size, ETag) once uploaded. With
--sidecar, the sidecar's sources that named the local files then name the uploaded objects.
"""

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])(?:ib|b)?|b)?\s*", re.IGNORECASE)
_UNITS = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def byte_size(text: str) -> int:
    """Bytes from ``64MB``, ``2GB``, ``1.5GiB``, ``512K`` or ``4096``: K, M, G and T are
    powers of 1024 (as the AWS CLI reads them), with or without ``B`` or ``iB``."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size: use e.g. 64MB, 2GB, 4096")
    unit = match.group(2)
    value = float(match.group(1)) * (_UNITS[unit.lower()] if unit else 1)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a size must be at least 1 byte")
    return int(value)


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "upload", help=SUMMARIES["upload"],
        description=HELP)
    parser.add_argument("files", nargs="+", metavar="FILE", help="file to upload")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--to", metavar="S3_PREFIX",
                       help="s3://bucket/prefix/: each file goes to the prefix + its name")
    where.add_argument("--presigned", action="append", metavar="DOC.json",
                       help="presigned part URLs of one file (a JSON document); give one per "
                            "FILE, in the same order")
    parser.add_argument("--sidecar", metavar="PATH",
                        help="re-stamp this sidecar: sources naming the uploaded local files "
                             "name the uploaded objects (format and layout are kept)")
    parser.add_argument("-o", "--output", metavar="PATH",
                        help="write the re-stamped sidecar here (default: in place)")
    add_upload_arguments(parser)
    add_read_arguments(parser)
    parser.set_defaults(run=run)


def add_upload_arguments(parser: argparse.ArgumentParser) -> None:
    """``--part-size``, ``--concurrency``, ``--retries`` and ``--no-verify-etag``."""
    defaults = UploadOptions()
    parser.add_argument("--part-size", type=byte_size, default=defaults.part_size,
                        metavar="SIZE", help="bytes per part, e.g. 64MB (default 16MB; S3 "
                                             "needs at least 5MB)")
    parser.add_argument("--concurrency", type=int, default=defaults.concurrency, metavar="N",
                        help="parts in flight at once, over all files (default %(default)s); "
                             "memory: N x part size")
    parser.add_argument("--retries", type=int, default=defaults.retries, metavar="N",
                        help="extra attempts per part after a failure (default %(default)s)")
    parser.add_argument("--no-verify-etag", dest="verify_etag", action="store_false",
                        help="do not check ETags against the parts' MD5s (for S3 buckets "
                             "encrypted with SSE-KMS or SSE-C, whose ETags are not MD5s)")


def upload_options_from(args: argparse.Namespace) -> UploadOptions:
    try:
        return UploadOptions(part_size=args.part_size, concurrency=args.concurrency,
                             retries=args.retries, verify_etag=args.verify_etag,
                             connection=read_options_from(args))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    options = upload_options_from(args)
    if args.output and not args.sidecar:
        raise argparse.ArgumentTypeError("-o names where the re-stamped sidecar goes; it needs "
                                         "--sidecar")
    targets = args.to if args.to else [_document(path) for path in args.presigned]
    if not args.to and len(targets) != len(args.files):
        raise argparse.ArgumentTypeError(f"{len(args.files)} files but {len(targets)} "
                                         "--presigned documents: give one per file")
    started = time.perf_counter()
    with TransferProgress(console, "uploading") as progress:
        results = upload_files(args.files, targets, options, progress)
    _report(console, results, time.perf_counter() - started)
    if args.sidecar:
        written, left = restamp_sidecar(args.sidecar, results, args.output)
        console.print(f"re-stamped {written}: its sources now name the uploaded objects",
                      highlight=False, markup=False)
        for url in left:
            console.print(f"  still local: {url} (not among the files uploaded)",
                          highlight=False, markup=False)
    return 0


def _document(path: str) -> PresignedUpload:
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as error:
        raise UploadError(f"{path}: cannot read the presigned upload document: "
                          f"{error.strerror or error}") from None
    except ValueError as error:
        raise UploadError(f"{path}: not valid JSON ({error})") from None
    return PresignedUpload.from_document(doc, path)


def _report(console: Console, results: list[UploadResult], seconds: float) -> None:
    total = sum(result.size for result in results)
    rate = total / seconds / 1e6 if seconds else 0.0
    for result in results:
        console.print(f"{result.path} → {result.url or '(presigned upload)'} "
                      f"({result.size:,} bytes, {result.parts} parts, ETag {result.etag})",
                      highlight=False, markup=False, soft_wrap=True)
    console.print(f"uploaded {len(results)} files, {total:,} bytes in {seconds:.2f} s "
                  f"({rate:.1f} MB/s)", highlight=False, markup=False)


class TransferProgress(UploadProgress):
    """A Rich progress bar of bytes acknowledged (thread-safe: told from the I/O thread)."""

    def __init__(self, console: Console, label: str) -> None:
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 DownloadColumn(), TransferSpeedColumn(),
                                 TextColumn("{task.fields[files]}"), TimeRemainingColumn(),
                                 console=console, transient=True)
        self.task: TaskID = self.progress.add_task(label, total=0, files="")
        self._lock = threading.Lock()
        self._started = self._finished = 0

    def __enter__(self) -> TransferProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.progress.stop()

    def add_total(self, nbytes: int) -> None:
        """Expect ``nbytes`` more bytes."""
        with self._lock:
            total = (self.progress.tasks[self.task].total or 0) + nbytes
        self.progress.update(self.task, total=total)

    def started(self, path: Path, size: int) -> None:
        with self._lock:
            self._started += 1
        self.add_total(size)
        self._show_files()

    def sent(self, path: Path, nbytes: int) -> None:
        self.progress.advance(self.task, nbytes)

    def finished(self, result: UploadResult) -> None:
        with self._lock:
            self._finished += 1
        self._show_files()

    def _show_files(self) -> None:
        self.progress.update(self.task, files=f"{self._finished}/{self._started} files")
