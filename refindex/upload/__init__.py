"""Multipart uploads of large files (packed archives, HDF5, NetCDF) to S3 or to presigned
part URLs, with per-part retries and checksums, and the sidecar re-stamped afterwards.

    results = upload_files(["a.tar", "b.tar"], "s3://bucket/prefix/")
    restamp_sidecar("store.refs.json", results)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from refindex.errors import UploadError
from refindex.io.loop import run_sync
from refindex.upload.exchanges import UploadCounters
from refindex.upload.options import UploadOptions
from refindex.upload.restamp import restamp, restamp_sidecar
from refindex.upload.targets import PartUrlProvider, PresignedUpload
from refindex.upload.uploader import Target, Uploader, UploadProgress, UploadResult

__all__ = [
    "PartUrlProvider",
    "PresignedUpload",
    "Target",
    "UploadCounters",
    "UploadOptions",
    "UploadProgress",
    "UploadResult",
    "Uploader",
    "object_url",
    "restamp",
    "restamp_sidecar",
    "upload_files",
]


def object_url(prefix: str, path: str | os.PathLike) -> str:
    """``s3://bucket/prefix/<file name>``: where a file uploaded under ``prefix`` goes (a
    prefix names a folder, with or without its final ``/``)."""
    if not prefix.startswith("s3://") or not prefix[len("s3://"):].strip("/"):
        raise UploadError(f"{prefix}: uploads go to s3://bucket/ or s3://bucket/prefix/")
    return prefix.rstrip("/") + "/" + Path(path).name


def upload_files(paths: Sequence[str | os.PathLike], to: str | Sequence[Target],
                 options: UploadOptions | None = None,
                 progress: UploadProgress | None = None) -> list[UploadResult]:
    """Upload ``paths`` at once (``options.concurrency`` parts in flight over all of them):
    to ``s3://bucket/prefix/`` (each file as prefix + its name), or each to its own target
    (``s3://bucket/key``, a presigned upload or its document, or a part URL provider).
    Raises UploadError for the first file that fails; the others are then aborted."""
    targets = [object_url(to, path) for path in paths] if isinstance(to, str) else list(to)
    if len(targets) != len(paths):
        raise UploadError(f"{len(paths)} files but {len(targets)} targets to upload them to")

    async def upload_all() -> list[UploadResult]:
        async with Uploader(options, progress) as uploader:
            return await uploader.upload_all(list(paths), targets)

    return run_sync(upload_all())
