"""Where the parts of one file go: presigned part URLs handed out by an archive (a JSON
document, or a callable that makes one), or an S3 multipart upload that refindex starts and
signs itself.

The document an archive hands out (``PresignedUpload.from_document``)::

    {
      "part_size": 67108864,
      "parts": [{"part_number": 1, "url": "https://..."},
                {"part_number": 2, "url": "https://..."}],
      "complete_url": "https://...",
      "abort_url": "https://...",
      "url": "s3://bucket/key"
    }

``parts`` lists one presigned ``PUT`` URL per part, numbered from 1, the last part shorter;
``part_size`` (bytes) says how the file is cut (default: the uploader's part size). The
parts' ETags are sent to ``complete_url`` with a ``POST`` of S3's
``CompleteMultipartUpload`` XML; ``abort_url`` (optional) gets a ``DELETE`` when the upload
fails. ``url`` (optional) is where readers find the object once uploaded: sidecars name it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from refindex.errors import UploadError
from refindex.io.s3 import S3Presigner
from refindex.upload.options import part_count

_UPLOAD_ID = re.compile(r"<UploadId>\s*([^<\s]+)\s*</UploadId>")


class MultipartTarget(Protocol):
    """One multipart upload in progress: the URL of each part, of completing and aborting."""

    part_size: int
    url: str | None
    """Where readers find the object when done (None: unknown, the sidecar keeps its path)."""

    def part_url(self, number: int) -> str:
        """A URL to ``PUT`` part ``number`` (from 1) to, valid now."""

    def complete_url(self) -> str:
        """A URL to ``POST`` the ``CompleteMultipartUpload`` document to."""

    def abort_url(self) -> str | None:
        """A URL to ``DELETE`` to give the upload up, or None."""

    def renew(self) -> bool:
        """After a refusal (401/403): make the next URLs work (sign them with credentials read
        anew); False when nothing can (URLs handed out by someone else)."""


@dataclass(frozen=True)
class PresignedUpload:
    """Presigned URLs of one multipart upload, as an archive hands them out."""

    parts: tuple[str, ...]
    """The ``PUT`` URL of part 1, 2, ..."""
    complete: str
    part_size: int | None = None
    """Bytes per part (the last shorter); None: the uploader's ``part_size``."""
    abort: str | None = None
    url: str | None = None

    @classmethod
    def from_document(cls, doc: object, name: str = "<document>") -> PresignedUpload:
        """Read the JSON document described in this module's docstring; a malformed one is an
        UploadError naming ``name`` and the field."""
        if not isinstance(doc, Mapping):
            raise UploadError(f"{name}: a presigned upload document must be a JSON object")
        parts = doc.get("parts")
        if not isinstance(parts, list) or not parts:
            raise UploadError(f"{name}: 'parts' must be a non-empty list of "
                              '{"part_number": N, "url": "..."}')
        urls: dict[int, str] = {}
        for entry in parts:
            number = entry.get("part_number") if isinstance(entry, Mapping) else None
            url = entry.get("url") if isinstance(entry, Mapping) else None
            if not isinstance(number, int) or number < 1 or not _is_http(url):
                raise UploadError(f"{name}: part {entry!r} needs an integer 'part_number' >= 1 "
                                  "and an http(s) 'url'")
            if number in urls:
                raise UploadError(f"{name}: part number {number} is listed twice")
            urls[number] = url
        if sorted(urls) != list(range(1, len(urls) + 1)):
            raise UploadError(f"{name}: part numbers must run from 1 to {len(urls)} without "
                              f"gaps, got {sorted(urls)}")
        complete, abort = doc.get("complete_url"), doc.get("abort_url")
        if not _is_http(complete):
            raise UploadError(f"{name}: 'complete_url' must be an http(s) URL")
        if abort is not None and not _is_http(abort):
            raise UploadError(f"{name}: 'abort_url' must be an http(s) URL when given")
        part_size = doc.get("part_size")
        if part_size is not None and (not isinstance(part_size, int) or part_size <= 0):
            raise UploadError(f"{name}: 'part_size' must be a positive number of bytes")
        url = doc.get("url")
        if url is not None and not isinstance(url, str):
            raise UploadError(f"{name}: 'url' must be a string when given")
        return cls(tuple(urls[n] for n in sorted(urls)), complete, part_size, abort, url)

    def bind(self, size: int, default_part_size: int, where: str) -> BoundPresignedUpload:
        """This upload for a file of ``size`` bytes; an UploadError unless its parts cut
        exactly that many bytes."""
        part_size = self.part_size or default_part_size
        needed = part_count(size, part_size)
        if needed != len(self.parts):
            raise UploadError(
                f"{where}: {size:,} bytes in parts of {part_size:,} bytes take {needed} parts, "
                f"but the presigned upload has {len(self.parts)} part URLs")
        return BoundPresignedUpload(self, part_size)


@dataclass(frozen=True)
class BoundPresignedUpload:
    """A ``PresignedUpload`` checked against the file it uploads (a ``MultipartTarget``)."""

    upload: PresignedUpload
    part_size: int

    @property
    def url(self) -> str | None:
        return self.upload.url

    def part_url(self, number: int) -> str:
        return self.upload.parts[number - 1]

    def complete_url(self) -> str:
        return self.upload.complete

    def abort_url(self) -> str | None:
        return self.upload.abort

    def renew(self) -> bool:
        return False  # the archive signed these URLs; only it can hand out new ones


PartUrlProvider = Callable[
    [os.PathLike | str, int, int],
    "PresignedUpload | Mapping | Awaitable[PresignedUpload | Mapping]",
]
"""``provider(path, size, part_size)`` -> the presigned upload of the file at ``path``
(``size`` bytes; ``part_size`` is the uploader's, the provider may choose another): a
``PresignedUpload`` or its JSON document, or an awaitable of either. A plain function runs
in a worker thread, so it may call an archive's API synchronously."""


@dataclass(frozen=True)
class S3MultipartUpload:
    """An S3 multipart upload refindex started: every URL is signed when asked for, so a
    long upload never sends a part to a URL that has expired."""

    object_url: str
    upload_id: str
    part_size: int
    presigner: S3Presigner

    @property
    def url(self) -> str:
        return self.object_url

    def part_url(self, number: int) -> str:
        return self.presigner.sign("PUT", self.object_url,
                                   {"partNumber": str(number), "uploadId": self.upload_id})

    def complete_url(self) -> str:
        return self.presigner.sign("POST", self.object_url, {"uploadId": self.upload_id})

    def abort_url(self) -> str:
        return self.presigner.sign("DELETE", self.object_url, {"uploadId": self.upload_id})

    def renew(self) -> bool:
        return self.presigner.renew()


def create_url(presigner: S3Presigner, object_url: str) -> str:
    """The signed URL whose ``POST`` starts a multipart upload (CreateMultipartUpload)."""
    return presigner.sign("POST", object_url, {"uploads": ""})


def upload_id_of(answer: str, where: str) -> str:
    """The ``UploadId`` of CreateMultipartUpload's XML answer."""
    match = _UPLOAD_ID.search(answer)
    if match is None:
        raise UploadError(f"{where}: the answer to CreateMultipartUpload has no UploadId: "
                          f"{answer[:300]!r}")
    return match.group(1)


def _is_http(url: object) -> bool:
    return isinstance(url, str) and url.lower().startswith(("http://", "https://"))
