"""Upload each part while it is packed (each upload part as soon as its bytes are written),
on refindex's I/O thread; a part a former run uploaded is kept when the object is still the
one recorded."""

from __future__ import annotations

import asyncio
from pathlib import Path

from refindex.errors import RefindexError
from refindex.index import Source
from refindex.io import ReadEngine
from refindex.io.loop import run_sync
from refindex.io.validation import same_etag
from refindex.pack.growing import GrowingFile
from refindex.pack.journal import Journal, PartRecord, Uploaded
from refindex.upload import (
    PartUrlProvider,
    UploadOptions,
    UploadProgress,
    UploadResult,
    object_url,
)
from refindex.upload.uploader import Uploader


class PartUploads:
    """Uploads parts to ``destination`` (``s3://bucket/prefix/``, or a part URL provider
    asked for each part) with an ``Uploader`` whose ``concurrency`` is shared by all parts;
    the journal records every finished upload."""

    def __init__(self, destination: str | PartUrlProvider, options: UploadOptions,
                 journal: Journal, progress: UploadProgress) -> None:
        self.destination = destination
        self.journal = journal
        self.progress = progress
        self.uploader = Uploader(options, progress)
        self._engine = ReadEngine(options.connection)
        self._tasks: dict[str, asyncio.Task[Source]] = {}

    def submit(self, name: str, path: Path, record: PartRecord) -> None:
        """Start uploading part ``name`` (at ``path``, as ``record`` describes it); raises
        the error of an earlier part's upload that has failed already."""
        self.raise_failed()
        self._tasks[name] = run_sync(_spawn(self._ensure(name, path, self._target(path),
                                                         record)))

    def stream(self, name: str, path: Path, growing: GrowingFile) -> None:
        """Start uploading part ``name`` while it is written (``growing``, to be renamed to
        ``path`` when done); the journal records the upload once the part is recorded."""
        self.raise_failed()
        self._tasks[name] = run_sync(_spawn(self._stream(name, path, self._target(path),
                                                         growing)))

    def raise_failed(self) -> None:
        """Raise the error of the first upload that failed, if any has."""
        for task in self._tasks.values():
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()

    def wait(self) -> dict[str, Source]:
        """The uploaded object of every part, once all are uploaded; the first failure
        cancels (and aborts) the others and is raised."""
        return run_sync(self._gather())

    def cancel(self) -> None:
        """Stop every upload still running (each aborts its multipart upload)."""
        run_sync(self._cancel_all())

    def close(self) -> None:
        run_sync(self._close())

    async def _ensure(self, name: str, path: Path, target: str | PartUrlProvider,
                      record: PartRecord) -> Source:
        kept = await self._already_uploaded(target, record)
        if kept is not None:
            self.progress.started(path, record.size)
            self.progress.sent(path, record.size)
            return kept
        return self._recorded(name, await self.uploader.upload(path, target))

    async def _stream(self, name: str, path: Path, target: str | PartUrlProvider,
                      growing: GrowingFile) -> Source:
        try:
            result = await self.uploader.upload(path, target, growing)
            await growing.wait_finished()  # the part's record is in the journal
        finally:
            growing.close()
        return self._recorded(name, result)

    def _recorded(self, name: str, result: UploadResult) -> Source:
        """The uploaded object of part ``name``, recorded in the journal."""
        source = result.source  # an UploadError unless readers can be told where it is
        self.journal.uploaded(name, Uploaded(source.url, result.size, result.etag,
                                             result.last_modified))
        return source

    def _target(self, path: Path) -> str | PartUrlProvider:
        return (object_url(self.destination, path) if isinstance(self.destination, str)
                else self.destination)

    async def _already_uploaded(self, target: str | PartUrlProvider,
                                record: PartRecord) -> Source | None:
        """The object a former run uploaded from this very part (to the same S3 URL, or
        wherever the provider's upload went), if it is still there."""
        done = record.uploaded
        if done is None or done.size != record.size or done.etag is None:
            return None
        if isinstance(target, str) and done.url != target:
            return None
        url = done.url
        try:
            info = await self._engine.info(url)
        except RefindexError:
            return None
        if info.size != done.size or info.etag is None or not same_etag(info.etag, done.etag):
            return None
        return Source(url, info.size, info.etag, info.last_modified)

    async def _gather(self) -> dict[str, Source]:
        names = list(self._tasks)
        try:
            sources = await asyncio.gather(*self._tasks.values())
        except BaseException:
            await self._cancel_all()
            raise
        return dict(zip(names, sources, strict=True))

    async def _cancel_all(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def _close(self) -> None:
        await self.uploader.close()
        await self._engine.close()


async def _spawn(coroutine) -> asyncio.Task:
    """Start ``coroutine`` as a task of the running (I/O) loop and return the task."""
    return asyncio.ensure_future(coroutine)
