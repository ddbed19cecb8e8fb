"""ChunkGrid: where each chunk of an array lies, for regular and rectilinear (irregular) grids.

A Zarr v2 array has a regular grid: every chunk is ``chunks`` long on each axis, the last one
cut short by the array's end. An array combined from members along an axis (365- and 366-day
years, monthly files of 28 to 31 days, a time chunk that does not divide a file's length)
has chunks of differing lengths along that axis, and the last chunk of every member may be
stored longer than the part of it that holds data (HDF5 and Zarr store edge chunks padded to
the full chunk shape). Per axis this module keeps the chunk boundaries (``edges``) and the
stored length of every chunk (``stored``), so that a reader can cut each decoded chunk to
the elements that are the array's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class AxisChunks:
    """The chunks of one axis: chunk ``i`` holds elements ``edges[i]:edges[i+1]`` of the
    array and decodes to ``stored[i]`` elements along the axis (the first ``edges[i+1] -
    edges[i]`` of which are the array's)."""

    edges: np.ndarray
    stored: np.ndarray

    @classmethod
    def regular(cls, length: int, chunk: int) -> AxisChunks:
        """``length`` elements in chunks of ``chunk``, the last one cut short."""
        count = -(-length // chunk) if chunk else 0
        edges = np.minimum(np.arange(count + 1, dtype=np.int64) * chunk, length)
        return cls(edges, np.full(count, chunk, dtype=np.int64))

    @classmethod
    def concatenated(cls, pieces: list[AxisChunks]) -> AxisChunks:
        """The chunks of ``pieces`` one after another along the axis."""
        if not pieces:
            return cls(np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64))
        offsets = np.cumsum([0] + [int(p.edges[-1]) for p in pieces[:-1]])
        edges = np.concatenate([pieces[0].edges[:1]] + [p.edges[1:] + o
                                                        for p, o in zip(pieces, offsets,
                                                                        strict=True)])
        return cls(edges.astype(np.int64), np.concatenate([p.stored for p in pieces]))

    @property
    def count(self) -> int:
        return len(self.stored)

    @property
    def length(self) -> int:
        return int(self.edges[-1])

    @property
    def sizes(self) -> np.ndarray:
        """Elements of the array in each chunk."""
        return np.diff(self.edges)

    def regular_chunk(self) -> int | None:
        """The chunk length if this axis is regular (every chunk but the last holds and
        stores exactly that many elements, the last no more), else None."""
        if self.count == 0:
            return None
        chunk = int(self.stored[0])
        sizes = self.sizes
        if (self.stored == chunk).all() and (sizes[:-1] == chunk).all() and sizes[-1] <= chunk:
            return chunk
        return None

    def overlapping(self, start: int, stop: int) -> range:
        """The chunks holding any of elements ``start:stop``."""
        if stop <= start:
            return range(0)
        first = int(np.searchsorted(self.edges, start, side="right")) - 1
        last = int(np.searchsorted(self.edges, stop, side="left"))
        return range(max(first, 0), min(last, self.count))

    def to_runs(self) -> list[list[int]]:
        """``[[count, size, stored], ...]``: runs of chunks of equal size and stored length."""
        sizes, stored = self.sizes, self.stored
        if not len(sizes):
            return []
        change = np.flatnonzero((sizes[1:] != sizes[:-1]) | (stored[1:] != stored[:-1])) + 1
        starts = np.concatenate([[0], change])
        counts = np.diff(np.concatenate([starts, [len(sizes)]]))
        return [[int(n), int(sizes[s]), int(stored[s])]
                for n, s in zip(counts, starts, strict=True)]

    @classmethod
    def from_runs(cls, runs: list[list[int]]) -> AxisChunks:
        counts = np.array([r[0] for r in runs], dtype=np.int64)
        sizes = np.repeat(np.array([r[1] for r in runs], dtype=np.int64), counts)
        stored = np.repeat(np.array([r[2] for r in runs], dtype=np.int64), counts)
        edges = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        return cls(edges, stored)


@dataclass(frozen=True, eq=False)
class ChunkGrid:
    """The chunks of an array, axis by axis (see :class:`AxisChunks`)."""

    axes: tuple[AxisChunks, ...]

    @classmethod
    def regular(cls, shape: tuple[int, ...], chunks: tuple[int, ...]) -> ChunkGrid:
        return cls(tuple(AxisChunks.regular(int(s), int(c))
                         for s, c in zip(shape, chunks, strict=True)))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(axis.length for axis in self.axes)

    @property
    def counts(self) -> tuple[int, ...]:
        """Chunks per axis (the shape of the chunk table's grid)."""
        return tuple(axis.count for axis in self.axes)

    def regular_chunks(self) -> tuple[int, ...] | None:
        """The chunk shape when every axis is regular, else None."""
        chunks = tuple(axis.regular_chunk() for axis in self.axes)
        return None if any(c is None for c in chunks) else chunks

    def stored_shape(self, coords: tuple[int, ...]) -> tuple[int, ...]:
        """The shape chunk ``coords`` decodes to."""
        return tuple(int(axis.stored[c]) for axis, c in zip(self.axes, coords, strict=True))

    def region(self, coords: tuple[int, ...]) -> tuple[slice, ...]:
        """The elements of the array that chunk ``coords`` holds."""
        return tuple(slice(int(axis.edges[c]), int(axis.edges[c + 1]))
                     for axis, c in zip(self.axes, coords, strict=True))

    def chunk_count(self) -> int:
        return math.prod(self.counts)

    def to_json(self) -> list[list[list[int]]]:
        """Per axis, its runs (:meth:`AxisChunks.to_runs`)."""
        return [axis.to_runs() for axis in self.axes]

    @classmethod
    def from_json(cls, runs: list[list[list[int]]]) -> ChunkGrid:
        return cls(tuple(AxisChunks.from_runs(axis) for axis in runs))
