"""A tar part that is uploaded while it is written: its final size is known before the
first byte (the headers are deterministic), so its multipart upload starts at once and each
upload part is sent as soon as the packer has written its bytes, rather than after the
whole part (2 GB by default) is packed.

The packer (a plain thread) tells how far it has written; the uploader (on refindex's I/O
loop) waits for the bytes a part needs and reads them with ``pread`` from a descriptor
opened while the file still has its temporary name, so renaming it into place when done
does not disturb the reads.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
from pathlib import Path

from refindex.errors import RefindexError
from refindex.upload.exchanges import md5_of


class GrowingFile:
    """The file at ``path`` (a part being written) that will hold ``size`` bytes."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size
        self._lock = threading.Lock()
        self._written = 0
        self._complete = False
        self._error: BaseException | None = None
        self._fd: int | None = None
        self._waiters: list[tuple[float, asyncio.Future, asyncio.AbstractEventLoop]] = []

    # --- the packer's side (any thread) ---------------------------------------------------

    def advanced(self, written: int) -> None:
        """The first ``written`` bytes are in the file."""
        with self._lock:
            if self._fd is None:  # opened now, before the file is renamed into place
                self._fd = os.open(self.path, os.O_RDONLY)
            self._written = written
            ready = [w for w in self._waiters if w[0] <= written]
            self._waiters = [w for w in self._waiters if w[0] > written]
        _wake(ready, None)

    def finished(self) -> None:
        """The file is complete and recorded: whoever waits for that may go on."""
        with self._lock:
            self._complete = True
            ready, self._waiters = self._waiters, []
        _wake(ready, None)

    def failed(self, error: BaseException) -> None:
        """Writing stopped: every reader waiting, or to come, gets an error."""
        with self._lock:
            self._error = RefindexError(f"{self.path}: the part was not written: {error}")
            ready, self._waiters = self._waiters, []
        _wake(ready, self._error)

    # --- the uploader's side (the I/O loop) -----------------------------------------------

    async def wait(self, end: float) -> None:
        """Until the first ``end`` bytes are written (``math.inf``: until ``finished``)."""
        with self._lock:
            if self._error is not None:
                raise self._error
            if self._complete or self._written >= end:
                return
            future = asyncio.get_running_loop().create_future()
            self._waiters.append((end, future, asyncio.get_running_loop()))
        await future

    async def wait_finished(self) -> None:
        await self.wait(math.inf)

    def read_part(self, offset: int, length: int) -> tuple[bytes, bytes]:
        """Bytes ``offset`` to ``offset + length`` (written already), and their MD5."""
        data = os.pread(self._fd, length, offset)
        if len(data) != length:
            raise RefindexError(f"{self.path}: bytes {offset:,}-{offset + length:,} could not "
                                f"be read back (got {len(data):,})")
        return data, md5_of(data)

    def close(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def _wake(waiters: list[tuple[float, asyncio.Future, asyncio.AbstractEventLoop]],
          error: BaseException | None) -> None:
    for _, future, loop in waiters:
        loop.call_soon_threadsafe(_settle, future, error)


def _settle(future: asyncio.Future, error: BaseException | None) -> None:
    if future.done():  # cancelled meanwhile
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
