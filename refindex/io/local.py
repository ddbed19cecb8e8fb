"""Local files: exact ``pread`` of a range, and ``stat``, run off the event loop."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime

from refindex.errors import FetchError, SourceChangedError, SourceNotFoundError
from refindex.io.requests import ObjectInfo, RangeRequest
from refindex.io.urls import local_path


async def read_local(request: RangeRequest) -> bytes:
    """The bytes of ``request`` from a local file, in a worker thread."""
    return await asyncio.to_thread(_read, request)


async def stat_local(url: str) -> ObjectInfo:
    """Size and modification time of a local file (local files have no ETag)."""
    return await asyncio.to_thread(stat_local_sync, url)


def _read(request: RangeRequest) -> bytes:
    path = local_path(request.url)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise SourceNotFoundError(f"{path}: no such file") from None
    except OSError as error:
        raise FetchError(f"{request.where}: cannot open: {error}") from error
    try:
        size = os.fstat(fd).st_size
        # Local files carry no ETag; their size is the identity we can check.
        if request.size is not None and size != request.size:
            raise SourceChangedError(
                f"{path}: size is {size} bytes, expected {request.size}; the file has changed"
            )
        length = size if request.length == -1 else request.length
        if request.offset + length > size:
            raise FetchError(f"{request.where}: range runs past the end of the file ({size} bytes)")
        return _pread_exact(fd, request.offset, length, request)
    finally:
        os.close(fd)


def _pread_exact(fd: int, offset: int, length: int, request: RangeRequest) -> bytes:
    # pread may return fewer bytes than asked (signals, some filesystems): loop until done.
    parts = []
    remaining = length
    while remaining:
        try:
            part = os.pread(fd, remaining, offset + length - remaining)
        except OSError as error:
            raise FetchError(f"{request.where}: read failed: {error}") from error
        if not part:
            raise FetchError(f"{request.where}: file ended early (truncated while reading?)")
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


def stat_local_sync(url: str) -> ObjectInfo:
    """:func:`stat_local` in the calling thread."""
    path = local_path(url)
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise SourceNotFoundError(f"{path}: no such file") from None
    except OSError as error:
        raise FetchError(f"{path}: cannot stat: {error}") from error
    modified = datetime.fromtimestamp(status.st_mtime, tz=UTC).isoformat()
    return ObjectInfo(url=url, size=status.st_size, etag=None, last_modified=modified)
