"""Uploader: one file at a time or many at once, each in parallel multipart parts, to S3 or to
presigned part URLs; the object stored is checked against the file before it counts.

Parts are read from the file as they are sent (never the whole file in memory: the
``concurrency`` parts in flight and a few read and hashed ahead, so that the link does not
idle while the next parts are read), sent with their MD5, and their ETags checked. When every
part is in, the upload is completed and the object's size and ETag are checked with a HEAD
(S3's ETag of a multipart object is known in advance: the MD5 of the parts' MD5s). A failed
upload is aborted, so no half-uploaded parts are left to be billed.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol, TypeVar

from refindex.errors import RefindexError, UploadError
from refindex.index import Source
from refindex.io import ReadEngine
from refindex.io.s3 import S3Presigner
from refindex.io.sessions import LoopResourcePool
from refindex.io.validation import same_etag
from refindex.upload.exchanges import Exchanges, UploadCounters, md5_of, multipart_etag
from refindex.upload.options import UploadOptions, part_count, s3_part_size
from refindex.upload.targets import (
    MultipartTarget,
    PartUrlProvider,
    PresignedUpload,
    S3MultipartUpload,
    create_url,
    upload_id_of,
)

_T = TypeVar("_T")

Target = str | PresignedUpload | Mapping | PartUrlProvider
"""Where a file goes: ``s3://bucket/key``, a ``PresignedUpload`` or its JSON document, or a
callable that makes one (see ``refindex.upload.targets``)."""


@dataclass(frozen=True)
class UploadResult:
    """One uploaded file: where it is now and what it is (``size`` bytes, ``etag``,
    ``last_modified`` as the server reports them), and what the upload took."""

    path: Path
    url: str | None
    size: int
    etag: str | None
    last_modified: str | None
    parts: int
    seconds: float

    @property
    def source(self) -> Source:
        """The uploaded object as a sidecar source."""
        if self.url is None:
            raise UploadError(f"{self.path}: the presigned upload named no 'url' for readers; "
                              "a sidecar cannot name the uploaded object")
        return Source(self.url, self.size, self.etag, self.last_modified)


class UploadProgress:
    """Told what an upload does; subclass and override (every method does nothing here).
    Called from refindex's I/O thread."""

    def started(self, path: Path, size: int) -> None:
        """An upload of ``size`` bytes from ``path`` begins."""

    def sent(self, path: Path, nbytes: int) -> None:
        """``nbytes`` more bytes of ``path`` were acknowledged by the server."""

    def finished(self, result: UploadResult) -> None:
        """``result.path`` is uploaded and checked."""


class GrowingSource(Protocol):
    """A file still being written (``refindex.pack.growing.GrowingFile``)."""

    size: int
    """Its final size in bytes."""

    async def wait(self, end: float) -> None:
        """Until its first ``end`` bytes are written."""

    def read_part(self, offset: int, length: int) -> tuple[bytes, bytes]:
        """Bytes ``offset`` to ``offset + length`` (written already), and their MD5."""


class Uploader:
    """Uploads files as ``options`` say; ``counters`` add up every upload it made.

    Make one per batch of files and ``await close()`` it (or use ``async with``). Its
    ``concurrency`` bounds the parts in flight over all the files it uploads at once.
    """

    def __init__(self, options: UploadOptions | None = None,
                 progress: UploadProgress | None = None) -> None:
        self.options = options or UploadOptions()
        self.progress = progress or UploadProgress()
        self.counters = UploadCounters()
        self._pool = LoopResourcePool(self.options.connection)
        self._engine = ReadEngine(self.options.connection)
        self._presigner = S3Presigner(self.options.connection)
        self._parts_in_memory: asyncio.Semaphore | None = None

    async def __aenter__(self) -> Uploader:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP sessions (of the running loop and others)."""
        await self._pool.close()
        await self._engine.close()

    async def upload(self, path: str | os.PathLike, target: Target,
                     growing: GrowingSource | None = None) -> UploadResult:
        """Upload the file at ``path`` to ``target``; the object is checked before this
        returns. Raises UploadError (after aborting the upload) when it cannot be done.

        ``growing``: the file is still being written; each part is sent as soon as
        ``growing`` has its bytes (its ``size`` is the file's final size)."""
        path = Path(path)
        started = time.perf_counter()
        try:
            size = growing.size if growing is not None else path.stat().st_size
        except OSError as error:
            raise UploadError(f"{path}: cannot upload: {error.strerror or error}") from None
        where = f"{path} -> {_describe(target)}"
        exchanges = Exchanges(self._pool.get().session, self.options, self.counters)
        multipart = await self._start(path, size, target, exchanges, where)
        self.progress.started(path, size)
        try:
            md5s, etags = await self._send_parts(path, size, multipart, exchanges, where,
                                                 growing)
            etag = await exchanges.complete(multipart.complete_url, etags,
                                            f"{where}: completing", multipart.renew)
        except BaseException:
            await self._abort(multipart, exchanges, where)
            raise
        result = await self._check_object(path, size, multipart, md5s, etag, where, started)
        self.progress.finished(result)
        return result

    async def upload_all(self, paths: list[str | os.PathLike],
                         targets: list[Target]) -> list[UploadResult]:
        """Upload each of ``paths`` to its target, all at once; the first failure cancels
        (and aborts) the others and is raised."""
        return await _all_or_cancel([self.upload(path, target)
                                     for path, target in zip(paths, targets, strict=True)])

    async def _start(self, path: Path, size: int, target: Target, exchanges: Exchanges,
                     where: str) -> MultipartTarget:
        if isinstance(target, str):
            if not target.startswith("s3://"):
                raise UploadError(f"{where}: uploads go to s3://bucket/key or to presigned part "
                                  "URLs (a document or a callable)")
            try:
                part_size = s3_part_size(size, self.options.part_size)
            except ValueError as error:
                raise UploadError(f"{where}: {error}") from None
            answer = await exchanges.create(lambda: create_url(self._presigner, target),
                                            f"{where}: starting", self._presigner.renew)
            return S3MultipartUpload(target, upload_id_of(answer, where), part_size,
                                     self._presigner)
        if callable(target):
            target = await _call_provider(target, path, size, self.options.part_size)
        if isinstance(target, Mapping):
            target = PresignedUpload.from_document(target, where)
        if not isinstance(target, PresignedUpload):
            raise UploadError(f"{where}: a part URL provider returned {type(target).__name__}, "
                              "not a PresignedUpload or its document")
        return target.bind(size, self.options.part_size, where)

    async def _send_parts(self, path: Path, size: int, multipart: MultipartTarget,
                          exchanges: Exchanges, where: str,
                          growing: GrowingSource | None) -> tuple[list[bytes], list[str]]:
        """Send every part, ``concurrency`` at once (a part of a growing file once it is
        written); their MD5s and the ETags the server answered (the MD5s, unless
        ``verify_etag`` is off), in part order."""
        if self._parts_in_memory is None:
            self._parts_in_memory = asyncio.Semaphore(self.options.concurrency
                                                      + _ready_parts(self.options))
        count = part_count(size, multipart.part_size)

        async def send(number: int) -> tuple[bytes, str]:
            offset = (number - 1) * multipart.part_size
            length = min(multipart.part_size, size - offset)
            if growing is not None:
                await growing.wait(offset + length)
            read = growing.read_part if growing is not None else partial(_read_part, path)
            async with self._parts_in_memory:
                data, md5 = await asyncio.to_thread(read, offset, length)
                etag = await exchanges.put_part(lambda: multipart.part_url(number), data, md5,
                                                f"{where}: part {number} of {count} "
                                                f"(bytes {offset:,}-{offset + length:,})",
                                                multipart.renew)
            self.progress.sent(path, length)
            return md5, etag

        sent = await _all_or_cancel([send(number) for number in range(1, count + 1)])
        return [md5 for md5, _ in sent], [etag for _, etag in sent]

    async def _abort(self, multipart: MultipartTarget, exchanges: Exchanges, where: str) -> None:
        # Shielded: a cancelled upload (Ctrl-C, a sibling that failed) must still abort.
        url = multipart.abort_url()
        if url is not None:
            with contextlib.suppress(RefindexError, OSError, asyncio.TimeoutError):
                await asyncio.shield(exchanges.abort(url, f"{where}: aborting"))

    async def _check_object(self, path: Path, size: int, multipart: MultipartTarget,
                            md5s: list[bytes], etag: str | None, where: str,
                            started: float) -> UploadResult:
        """The object as a HEAD of ``multipart.url`` finds it, which must be the file sent."""
        expected = multipart_etag(md5s)
        if self.options.verify_etag and etag is not None and not same_etag(etag, expected):
            raise UploadError(f"{where}: the object's ETag is {etag}, but the parts sent make "
                              f"{expected}; the object stored is not the file")
        last_modified = None
        if multipart.url is not None:
            try:
                info = await self._engine.info(multipart.url)
            except RefindexError as error:
                raise UploadError(f"{where}: uploaded, but the object cannot be checked: "
                                  f"{error}") from error
            if info.size != size:
                raise UploadError(f"{where}: the object has {info.size:,} bytes, the file "
                                  f"{size:,}")
            if etag is not None and info.etag is not None and not same_etag(info.etag, etag):
                raise UploadError(f"{where}: the object's ETag is {info.etag}, but completing "
                                  f"the upload answered {etag}; another writer replaced it?")
            etag, last_modified = info.etag or etag, info.last_modified
        return UploadResult(path, multipart.url, size, etag, last_modified, len(md5s),
                            time.perf_counter() - started)


async def _call_provider(provider: PartUrlProvider, path: Path, size: int,
                         part_size: int) -> PresignedUpload | Mapping:
    if inspect.iscoroutinefunction(provider):
        return await provider(path, size, part_size)
    made = await asyncio.to_thread(provider, path, size, part_size)
    return await made if inspect.isawaitable(made) else made


async def _all_or_cancel(coroutines: list[Awaitable[_T]]) -> list[_T]:
    """The results of ``coroutines`` run at once; the first error cancels the others (and
    is raised as it is, not in an exception group)."""
    tasks = [asyncio.ensure_future(coroutine) for coroutine in coroutines]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _ready_parts(options: UploadOptions) -> int:
    """Parts read and hashed ahead, beyond the ``concurrency`` in flight. Parts share the
    link evenly, so they tend to finish together: without parts ready, the link would idle
    while the next ones are read and hashed."""
    return max(1, options.concurrency // 4)


def _read_part(path: Path, offset: int, length: int) -> tuple[bytes, bytes]:
    """Bytes ``offset`` to ``offset + length`` of the file, and their MD5."""
    with open(path, "rb") as file:
        file.seek(offset)
        data = file.read(length)
    if len(data) != length:
        raise UploadError(f"{path}: bytes {offset:,}-{offset + length:,} could not be read "
                          f"(got {len(data):,}); did the file shrink during the upload?")
    return data, md5_of(data)


def _describe(target: Target) -> str:
    if isinstance(target, str):
        return target
    if isinstance(target, PresignedUpload):
        return target.url or "presigned part URLs"
    if isinstance(target, Mapping):
        url = target.get("url")
        return url if isinstance(url, str) else "presigned part URLs"
    return getattr(target, "__name__", "a part URL provider")
