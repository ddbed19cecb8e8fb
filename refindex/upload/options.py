"""UploadOptions: every knob of uploading, in one frozen, documented object."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from refindex.io.options import MiB, ReadOptions
from refindex.io.retry import RetryPolicy

GiB = 1024 * MiB

# S3's limits on multipart uploads: at most 10,000 parts, each of 5 MiB to 5 GiB except the
# last, which may be smaller.
MAX_PARTS = 10_000
MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * GiB


@dataclass(frozen=True)
class UploadOptions:
    """How refindex uploads files in multipart parts (``refindex.upload``).

    Memory: up to ``concurrency`` parts in flight plus ``concurrency // 4`` (at least one)
    read ahead, of ``part_size`` bytes each, are held at once (160 MiB by default).
    """

    part_size: int = 16 * MiB
    """Bytes per part (the last part is shorter). To S3 at least 5 MiB; raised for a file
    that would need more than 10,000 parts (above 160 GiB at 16 MiB). Presigned part URLs
    come with their own size. Chosen with benchmarks/upload.py's link (20 ms, 1 Gbit/s,
    SeaweedFS; a 1 GiB file, 8 parts in flight): 64 MiB parts sent 100-105 MB/s, 32 MiB
    110, 16 MiB 110-114 (the test server itself takes about 140 MB/s at most); smaller
    parts start sending sooner and finish less together."""

    concurrency: int = 8
    """Parts in flight at once, over all the files of one uploader: 8 parts of 16 MiB keep
    a 1 Gbit/s link with 20 ms round trips about 90 % full (16 parts of 8 MiB did no
    better)."""

    retries: int = 5
    """Extra attempts of one part (or of the request that starts or completes an upload)
    after a failed one: 5xx, 429, ``SlowDown``, a broken connection, a checksum the server
    refused (``BadDigest``) or an ETag that is not the part's MD5. A refusal (401/403: an
    expired signature, rotated credentials) of an ``s3://`` upload is tried once more with
    the credentials read anew and the URL signed anew."""

    backoff_base: float = 0.2
    """Seconds before the first retry; doubles with each further retry, with full jitter."""

    backoff_max: float = 10.0
    """Upper bound in seconds on one backoff wait (a server's ``Retry-After`` is honoured)."""

    part_timeout: float = 900.0
    """Seconds one attempt of one part may take, sending its body included (64 MiB need
    54 s at 10 Mbit/s); then it is abandoned and retried."""

    deadline: float = 3600.0
    """Seconds one request (a part, or the request that starts or completes an upload) may
    take from its first attempt to its answer, retries and waits included; then the upload
    fails with an ``UploadError`` (and is aborted)."""

    verify_etag: bool = True
    """Check that each part's ETag is the MD5 of the bytes sent and the object's ETag is
    S3's multipart ETag of those parts. S3 buckets encrypted with SSE-KMS or SSE-C answer
    other ETags: turn this off for them (``Content-MD5`` still makes S3 check every part)."""

    connection: ReadOptions = field(default_factory=ReadOptions)
    """Endpoint, region, credentials (``anon``), presigned URL lifetime and the timeouts of
    connecting and of silent responses; also used for the HEAD that checks each uploaded
    object."""

    def __post_init__(self) -> None:
        for name in ("part_size", "concurrency", "part_timeout", "deadline"):
            if getattr(self, name) <= 0:
                raise ValueError(f"UploadOptions.{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("retries", "backoff_base", "backoff_max"):
            if getattr(self, name) < 0:
                raise ValueError(f"UploadOptions.{name} must be >= 0, got {getattr(self, name)!r}")
        if self.part_size > MAX_PART_SIZE:
            raise ValueError(f"UploadOptions.part_size must be at most 5 GiB (S3's limit), "
                             f"got {self.part_size}")

    def replace(self, **changes: Any) -> UploadOptions:
        """A copy with ``changes`` applied (validated like the constructor)."""
        return dataclasses.replace(self, **changes)

    @property
    def retry(self) -> RetryPolicy:
        """How each request of an upload is retried (``retries``, ``backoff_base``,
        ``backoff_max``, ``deadline``): by the same loop as reads (``refindex.io.attempts``)."""
        return RetryPolicy(self.retries, self.backoff_base, self.backoff_max, self.deadline)


def s3_part_size(size: int, wanted: int) -> int:
    """Bytes per part for an S3 upload of ``size`` bytes: ``wanted``, but at least 5 MiB, and
    raised (in whole MiB) when ``size`` would need more than 10,000 parts."""
    part_size = max(wanted, MIN_PART_SIZE)
    if part_count(size, part_size) > MAX_PARTS:
        part_size = -(-size // MAX_PARTS)
        part_size = -(-part_size // MiB) * MiB
    if part_size > MAX_PART_SIZE:
        raise ValueError(f"{size} bytes do not fit into {MAX_PARTS} parts of at most 5 GiB "
                         "(S3's largest object is 5 TiB)")
    return part_size


def part_count(size: int, part_size: int) -> int:
    """Parts of ``part_size`` bytes that ``size`` bytes take; an empty file is one empty part."""
    return max(1, -(-size // part_size))
