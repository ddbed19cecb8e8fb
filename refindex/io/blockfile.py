"""RemoteFile: a read-only, seekable file over a remote object, for h5py and other parsers.

Format libraries read metadata in many small scattered reads. RemoteFile turns them into a
few large aligned block reads through the engine, keeps recent blocks in an LRU cache and
reads ahead when access is sequential, so scanning a remote HDF5 file costs few requests.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from collections.abc import Iterable
from typing import BinaryIO

from refindex.errors import SourceNotFoundError
from refindex.io.engine import ReadEngine
from refindex.io.loop import collections_paused
from refindex.io.requests import RangeRequest
from refindex.io.stats import format_bytes
from refindex.io.urls import is_local, local_path


class RemoteFile(io.RawIOBase):
    """A read-only file over ``url``, served from cached blocks fetched with ``engine``.

    ``size`` (bytes) and ``etag`` pin the object: every block read checks them, so an object
    replaced during a scan fails with ``SourceChangedError``. When ``size`` is None both come
    from one HEAD. ``block_size`` (bytes), ``cache_size`` (bytes) and ``readahead_blocks``
    default to the engine's options. ``preloaded`` is the object's first block when it was
    fetched already (checked against ``size``). ``requests`` and ``bytes_fetched`` count what
    was read.
    """

    def __init__(
        self,
        engine: ReadEngine,
        url: str,
        size: int | None = None,
        *,
        etag: str | None = None,
        block_size: int | None = None,
        cache_size: int | None = None,
        readahead_blocks: int | None = None,
        preloaded: bytes | None = None,
    ) -> None:
        super().__init__()
        options = engine.options
        self.engine = engine
        self.url = url
        self.block_size = block_size or options.block_size
        cache_size = options.block_cache_size if cache_size is None else cache_size
        self._max_blocks = max(1, cache_size // self.block_size)
        self._readahead = options.readahead_blocks if readahead_blocks is None else readahead_blocks
        self.requests = 0
        self.bytes_fetched = 0
        if size is None:
            info = engine.info_sync(url)
            self.requests += 1
            size, etag = info.size, etag or info.etag
        self.size = size
        self.etag = etag
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        if preloaded is not None:
            if len(preloaded) != min(self.block_size, size):
                raise ValueError(f"{url}: the preloaded first block has {len(preloaded)} "
                                 f"bytes, expected {min(self.block_size, size)}")
            self._blocks[0] = preloaded
        self._position = 0
        self._last_block: int | None = None

    @property
    def summary(self) -> str:
        """``downloaded X of Y in N requests``, for the scanner's report."""
        return (
            f"downloaded {format_bytes(self.bytes_fetched)} of {format_bytes(self.size)} "
            f"in {self.requests} requests"
        )

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._check_open()
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._check_open()
        if whence == io.SEEK_SET:
            position = offset
        elif whence == io.SEEK_CUR:
            position = self._position + offset
        elif whence == io.SEEK_END:
            position = self.size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if position < 0:
            raise ValueError(f"negative seek position {position}")
        self._position = position
        return position

    def readinto(self, buffer) -> int:
        """Fill ``buffer`` from the current position; fewer bytes only at the end of file."""
        self._check_open()
        target = memoryview(buffer).cast("B")
        start = self._position
        end = min(start + len(target), self.size)
        if start >= end:
            return 0
        first, last = start // self.block_size, (end - 1) // self.block_size
        blocks = self._get_blocks(first, last)
        written = 0
        for index in range(first, last + 1):
            block_start = index * self.block_size
            lo = max(start, block_start) - block_start
            hi = min(end, block_start + self.block_size) - block_start
            target[written : written + hi - lo] = blocks[index][lo:hi]
            written += hi - lo
        self._position = end
        return written

    def readall(self) -> bytes:
        """The rest of the object from the current position, in one go."""
        self._check_open()
        buffer = bytearray(max(0, self.size - self._position))
        view = memoryview(buffer)
        filled = 0
        while filled < len(buffer):
            filled += self.readinto(view[filled:])
        return bytes(buffer)

    def prefetch(self, ranges: Iterable[tuple[int, int]]) -> None:
        """Fetch in one batch the blocks holding byte ranges ``(offset, length)`` that are not
        cached, as far as the cache holds them: for a reader about to visit places it knows
        (a TIFF's SubIFDs), which would otherwise cost a round trip each."""
        self._check_open()
        wanted: set[int] = set()
        for offset, length in ranges:
            end = min(offset + max(length, 1), self.size)
            if 0 <= offset < end:
                wanted.update(range(offset // self.block_size, (end - 1) // self.block_size + 1))
        missing = sorted(wanted - self._blocks.keys())[:self._max_blocks]
        if missing:
            for index, block in self._fetch(missing).items():
                self._remember(index, block)

    def close(self) -> None:
        self._blocks.clear()
        super().close()

    def _get_blocks(self, first: int, last: int) -> dict[int, bytes]:
        wanted = range(first, last + 1)
        found = {index: self._blocks[index] for index in wanted if index in self._blocks}
        missing = [index for index in wanted if index not in found]
        if missing:
            if self._last_block is not None and first in (self._last_block, self._last_block + 1):
                missing += self._readahead_after(last, len(wanted))
            fetched = self._fetch(missing)
            # A read wider than the cache still gets every block it needs from here.
            found.update((index, fetched[index]) for index in wanted if index in fetched)
            for index, block in fetched.items():
                self._remember(index, block)
        for index in wanted:
            if index in self._blocks:
                self._blocks.move_to_end(index)
        self._last_block = last
        return found

    def _readahead_after(self, last: int, wanted: int) -> list[int]:
        # Never read ahead more than the cache can hold next to the blocks asked for, or the
        # read-ahead would evict what the next read needs.
        ahead = min(self._readahead, self._max_blocks - wanted)
        block_count = -(-self.size // self.block_size)
        stop = min(last + 1 + ahead, block_count)
        return [index for index in range(last + 1, stop) if index not in self._blocks]

    def _fetch(self, indices: list[int]) -> dict[int, bytes]:
        requests = [
            RangeRequest(
                self.url,
                index * self.block_size,
                min(self.block_size, self.size - index * self.block_size),
                etag=self.etag,
                size=self.size,
            )
            for index in indices
        ]
        with collections_paused():  # h5py may be holding its lock while it waits here
            data = self.engine.read_sync(requests)
        self.requests += len(requests)
        self.bytes_fetched += sum(len(block) for block in data)
        return dict(zip(indices, data, strict=True))

    def _remember(self, index: int, block: bytes) -> None:
        self._blocks[index] = block
        while len(self._blocks) > self._max_blocks:
            self._blocks.popitem(last=False)

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")

    def __repr__(self) -> str:
        return f"<RemoteFile {self.url} ({self.size} bytes)>"


def open_container(url: str, engine: ReadEngine) -> BinaryIO | RemoteFile:
    """A read-only binary file for ``url``: a plain file if local, else a ``RemoteFile``."""
    if is_local(url):
        path = local_path(url)
        try:
            return open(path, "rb")  # noqa: SIM115 - the caller owns and closes it
        except FileNotFoundError:
            raise SourceNotFoundError(f"{path}: no such file") from None
    return RemoteFile(engine, url)
