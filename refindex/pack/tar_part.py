"""Write one part: a standard, uncompressed POSIX tar of the store's files, members named by
their Zarr keys: ustar headers built by hand (see ``ustar``), pax ones only where ustar cannot
hold a name, and each file read in bounded pieces and written with its header in one system
call. Where each member's data starts is recorded as it is written; a part from an earlier
run is read back with ``tarfile`` (headers only) to find it again.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from refindex.errors import ContainerError, RefindexError
from refindex.pack.ustar import end_of_archive, member_header, padding
from refindex.pack.zarr_tree import FileEntry

COPY_BUFFER = 1024 * 1024  # bytes copied at a time from a store file into the tar
_CHECKSUM_BUFFER = 8 * 1024 * 1024
PARTIAL = ".partial"

Packed = Callable[[int, int], None]
"""``packed(files, nbytes)``: more files (and their bytes) are in the part being written."""


@dataclass(frozen=True)
class WrittenPart:
    """A part on disk: its size and SHA-256, and each member's data offset (bytes)."""

    size: int
    sha256: str
    offsets: np.ndarray


def planned_size(members: Iterable[FileEntry]) -> int:
    """The size in bytes of the tar that ``write_part`` writes of ``members`` (as they are
    listed now): known before the first byte, so its upload can start at once."""
    size = 0
    for entry in members:
        size += (len(member_header(entry.key, entry.size, _seconds(entry.mtime_ns)))
                 + entry.size + len(padding(entry.size)))
    return size + len(end_of_archive(size))


def write_part(path: Path, root: Path, members: Iterable[FileEntry], count: int,
               packed: Packed | None = None,
               written_to: Callable[[int], None] | None = None) -> WrittenPart:
    """Write ``members`` (files of the store at ``root``) as the tar at ``path``.

    The tar is written beside ``path`` and renamed into place when complete, so a part at
    ``path`` is never a torn one. A store file whose size is not the planned one (it changed
    while packing) is a ContainerError; failing to write the part (a full disk) a
    RefindexError naming it. ``written_to`` is told the bytes written so far, after each
    member (a part uploaded while it is written reads them)."""
    partial = path.with_name(path.name + PARTIAL)
    offsets = np.empty(count, dtype=np.int64)
    try:
        with open(partial, "wb", buffering=0) as raw:
            out = _Digesting(raw.fileno())
            written = 0
            for i, entry in enumerate(members):
                offsets[i] = _add(out, str(root), entry)
                written += 1
                if packed is not None:
                    packed(1, entry.size)
                if written_to is not None:
                    written_to(out.size)
            out.write([end_of_archive(out.size)])
            if written_to is not None:
                written_to(out.size)
            os.fsync(raw.fileno())
    except OSError as error:  # reading the store's files raises ContainerError instead
        raise RefindexError(f"{partial}: cannot write the part: "
                            f"{error.strerror or error}") from None
    if written != count:
        raise AssertionError(f"{path}: wrote {written} members, planned {count}")
    os.replace(partial, path)
    return WrittenPart(out.size, out.sha256.hexdigest(), offsets)


def read_offsets(path: Path, members: Iterable[FileEntry], count: int) -> np.ndarray | None:
    """Each member's data offset in the existing tar at ``path``, or None unless it holds
    exactly ``members`` (same names, sizes and times, in order)."""
    offsets = np.empty(count, dtype=np.int64)
    expected = iter(members)
    try:
        with tarfile.open(path, mode="r:") as tar:
            for i in range(count + 1):
                info = tar.next()
                tar.members.clear()  # read headers one by one; keep none
                entry = next(expected, None)
                if info is None or entry is None:
                    return offsets if info is None and entry is None and i == count else None
                if (info.name, info.size, int(info.mtime)) != (entry.key, entry.size,
                                                              _seconds(entry.mtime_ns)):
                    return None
                offsets[i] = info.offset_data
    except (tarfile.TarError, OSError):
        return None
    return None


def file_sha256(path: Path) -> str:
    """SHA-256 of the file at ``path`` (hex), read in bounded pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while piece := file.read(_CHECKSUM_BUFFER):
            digest.update(piece)
    return digest.hexdigest()


def _add(out: _Digesting, root: str, entry: FileEntry) -> int:
    """Append one store file (header, data, padding); returns the offset of its data."""
    source = os.path.join(root, entry.key)
    try:
        fd = os.open(source, os.O_RDONLY)
    except FileNotFoundError:
        raise ContainerError(f"{source}: removed while packing; run pack again") from None
    except OSError as error:
        raise ContainerError(f"{source}: cannot be packed: {error}") from None
    try:
        if os.fstat(fd).st_size != entry.size:
            raise ContainerError(f"{source}: changed while packing (size is not the "
                                 f"{entry.size} bytes planned); run pack again")
        pieces = [member_header(entry.key, entry.size, _seconds(entry.mtime_ns))]
        offset = out.size + len(pieces[0])
        remaining = entry.size
        while remaining:
            # Fresh bytes per piece: reading into one reused buffer measured no faster.
            piece = _read(fd, min(remaining, COPY_BUFFER), source)
            pieces.append(piece)
            remaining -= len(piece)
            if remaining:
                out.write(pieces)
                pieces = []
        pieces.append(padding(entry.size))
        out.write(pieces)
    finally:
        os.close(fd)
    return offset


def _read(fd: int, size: int, source: str) -> bytes:
    """Up to ``size`` bytes, at least one, of the store file open as ``fd``."""
    try:
        piece = os.read(fd, size)
    except OSError as error:
        raise ContainerError(f"{source}: cannot be packed: {error}") from None
    if not piece:
        raise ContainerError(f"{source}: changed while packing (shorter than planned); "
                             "run pack again")
    return piece


def _seconds(mtime_ns: int) -> int:
    return mtime_ns // 1_000_000_000


class _Digesting:
    """A write-only file that hashes (SHA-256) and counts what passes through it."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, pieces: list[bytes]) -> None:
        """Append ``pieces``, in one system call when the kernel takes them all."""
        for piece in pieces:
            self.sha256.update(piece)
            self.size += len(piece)
        written = os.writev(self.fd, pieces)
        if written < sum(map(len, pieces)):  # a short write (a full disk, a signal): retry
            rest = memoryview(b"".join(pieces))[written:]
            while rest:
                rest = rest[os.write(self.fd, rest):]
