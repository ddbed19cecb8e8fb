"""Write one part: a standard, uncompressed tar (POSIX pax; plain ustar headers for names up
to 100 bytes) of the store's files, members named by their Zarr keys, copied through a
bounded buffer. Where each member's data starts is recorded as it is written; a part from
an earlier run is read back the same way (headers only) to find it again.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from refindex.errors import ContainerError
from refindex.pack.layout import BLOCK
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


def write_part(path: Path, root: Path, members: Iterable[FileEntry], count: int,
               packed: Packed | None = None) -> WrittenPart:
    """Write ``members`` (files of the store at ``root``) as the tar at ``path``.

    The tar is written beside ``path`` and renamed into place when complete, so a part at
    ``path`` is never a torn one. A store file whose size is not the planned one (it changed
    while packing) is a ContainerError."""
    partial = path.with_name(path.name + PARTIAL)
    offsets = np.empty(count, dtype=np.int64)
    with open(partial, "wb") as raw:
        out = _Digesting(raw)
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT,
                          copybufsize=COPY_BUFFER) as tar:
            written = 0
            for i, entry in enumerate(members):
                offsets[i] = _add(tar, out, root, entry)
                written += 1
                if packed is not None:
                    packed(1, entry.size)
        raw.flush()
        os.fsync(raw.fileno())
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


def _add(tar: tarfile.TarFile, out: _Digesting, root: Path, entry: FileEntry) -> int:
    """Add one store file; returns the offset of its data in the tar."""
    info = tarfile.TarInfo(entry.key)
    info.size = entry.size
    info.mtime = _seconds(entry.mtime_ns)  # an integer: a float would cost a pax header
    info.mode = 0o644
    source = root.joinpath(*entry.key.split("/"))
    try:
        with open(source, "rb") as file:
            if os.fstat(file.fileno()).st_size != entry.size:
                raise ContainerError(f"{source}: changed while packing (size is not the "
                                     f"{entry.size} bytes planned); run pack again")
            tar.addfile(info, file)
    except FileNotFoundError:
        raise ContainerError(f"{source}: removed while packing; run pack again") from None
    except (tarfile.ReadError, OSError) as error:  # tarfile: the file shrank mid-copy
        raise ContainerError(f"{source}: cannot be packed: {error}") from None
    # The data ends at a block boundary just before the current end of the tar.
    return out.tell() - (entry.size + BLOCK - 1) // BLOCK * BLOCK


def _seconds(mtime_ns: int) -> int:
    return mtime_ns // 1_000_000_000


class _Digesting:
    """A write-only file that hashes (SHA-256) and counts what passes through it."""

    def __init__(self, raw) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def tell(self) -> int:
        return self.size
