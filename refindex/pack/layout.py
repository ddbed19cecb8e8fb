"""Which file goes into which archive, in which order: metadata first, then the other files,
then each array's chunks in C order of its chunk grid (a sharded array's shards in C order of
its shard grid), so that chunks read together lie together and one merged range read covers
neighbours; cut into parts of about the target size.

Members are numbered 0..n-1 in that order; a part is a range of them. Chunk members stay
columnar (array, flat position, size, mtime); their keys are made per part, when written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from refindex.pack.ustar import BLOCK
from refindex.pack.zarr_tree import ArrayFiles, FileEntry, StoreTree

# ustar holds names up to 100 bytes; a longer one costs a pax header (one header block and a
# block of records) on top. An estimate only: part sizes need not be exact.
_USTAR_NAME = 100
_PAX_EXTRA = 2 * BLOCK
LAYOUT_VERSION = 1  # in every part's fingerprint: a change of layout rewrites every part


@dataclass(frozen=True)
class PartPlan:
    """Part ``number``: members ``start`` to ``stop`` (exclusive), about ``estimate`` bytes
    of tar; ``fingerprint`` changes when any of its files (key, size, mtime) does."""

    number: int
    name: str
    start: int
    stop: int
    estimate: int
    fingerprint: str

    def __len__(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class Segment:
    """A run of members: the loose files (``array`` None) or the chunks of one array."""

    start: int
    stop: int
    array: ArrayFiles | None = None


class PackLayout:
    """The members of a store's archives, in order, and the parts they are cut into."""

    def __init__(self, tree: StoreTree, target_size: int, stem: str) -> None:
        if target_size <= 0:
            raise ValueError(f"target size must be > 0 bytes, got {target_size}")
        self.tree = tree
        self.loose: list[FileEntry] = tree.metadata + tree.others
        self.segments = _segments(self.loose, tree)
        self.count = self.segments[-1].stop if self.segments else 0
        sizes = self._tar_sizes()
        self.data_bytes = int(sum(int(array.size.sum()) for array in tree.arrays.values())
                              + sum(entry.size for entry in self.loose))
        self.parts = _cut(sizes, target_size, stem, self)

    def members(self, start: int, stop: int) -> Iterator[FileEntry]:
        """The files of members ``start`` to ``stop``, in order."""
        for segment, a, b in self._overlaps(start, stop):
            if segment.array is None:
                yield from self.loose[a:b]
                continue
            array = segment.array
            yield from map(FileEntry, array.keys(a, b), array.size[a:b].tolist(),
                           array.mtime_ns[a:b].tolist())

    def data_bytes_in(self, start: int, stop: int) -> int:
        """Bytes of the files of members ``start`` to ``stop``."""
        total = 0
        for segment, a, b in self._overlaps(start, stop):
            if segment.array is None:
                total += sum(entry.size for entry in self.loose[a:b])
            else:
                total += int(segment.array.size[a:b].sum())
        return total

    def fingerprint(self, start: int, stop: int) -> str:
        """A digest of members ``start`` to ``stop``: their keys, sizes and mtimes."""
        digest = hashlib.sha256(f"refindex-pack-layout-{LAYOUT_VERSION}".encode())
        for segment, a, b in self._overlaps(start, stop):
            if segment.array is None:
                for entry in self.loose[a:b]:
                    digest.update(f"{entry.key}\0{entry.size}\0{entry.mtime_ns}\n".encode())
                continue
            array = segment.array
            spec = array.spec  # what turns flat positions into keys
            digest.update(f"{spec.path}\0{spec.keys}\0{spec.grid}\n".encode())
            for column in (array.flat, array.size, array.mtime_ns):
                digest.update(np.ascontiguousarray(column[a:b]).tobytes())
        return digest.hexdigest()

    def _overlaps(self, start: int, stop: int) -> Iterator[tuple[Segment, int, int]]:
        """Each segment holding some of members ``start`` to ``stop``, with the range of
        them it holds, counted from the segment's start."""
        for segment in self.segments:
            low, high = max(start, segment.start), min(stop, segment.stop)
            if low < high:
                yield segment, low - segment.start, high - segment.start

    def _tar_sizes(self) -> np.ndarray:
        """Estimated tar bytes of each member: header and data rounded up to blocks."""
        sizes = [np.array([_tar_size(len(e.key.encode()), e.size) for e in self.loose],
                          dtype=np.int64)]
        for array in self.tree.arrays.values():
            padded = (array.size + BLOCK - 1) // BLOCK * BLOCK
            sizes.append(padded + BLOCK + (_PAX_EXTRA if _longest_key(array) > _USTAR_NAME
                                           else 0))
        return np.concatenate(sizes) if sizes else np.zeros(0, dtype=np.int64)


def _segments(loose: list[FileEntry], tree: StoreTree) -> list[Segment]:
    segments = [Segment(0, len(loose))]
    for array in tree.arrays.values():
        start = segments[-1].stop
        segments.append(Segment(start, start + len(array), array))
    return segments


def _cut(sizes: np.ndarray, target: int, stem: str, layout: PackLayout) -> list[PartPlan]:
    """Greedy parts: members are added until the next would pass ``target`` bytes (a member
    larger than the target gets a part of its own)."""
    ends = np.cumsum(sizes)
    parts: list[PartPlan] = []
    start, done = 0, 0
    while start < len(sizes):
        stop = int(np.searchsorted(ends, done + target, side="right"))
        stop = max(stop, start + 1)
        estimate = int(ends[stop - 1] - done)
        name = f"{stem}-{len(parts):05d}.tar"
        parts.append(PartPlan(len(parts), name, start, stop, estimate,
                              layout.fingerprint(start, stop)))
        start, done = stop, int(ends[stop - 1])
    return parts


def _tar_size(key_length: int, size: int) -> int:
    extra = _PAX_EXTRA if key_length > _USTAR_NAME else 0
    return BLOCK + extra + (size + BLOCK - 1) // BLOCK * BLOCK


def _longest_key(array: ArrayFiles) -> int:
    """An upper bound on the length (bytes) of the array's chunk keys."""
    spec = array.spec
    grid = spec.grid or (1,)
    name = sum(len(str(max(n - 1, 0))) for n in grid) + len(grid) - 1
    if spec.keys.prefix:  # v3's default encoding: "c/0/0"
        name += len(spec.keys.prefix) + 1
    path = spec.path.encode()
    return len(path) + 1 + name if path else name
