"""Where a TIFF series level's values are: each page's strips or tiles, in the order tifffile
gives its segments (planes of separate samples first, then rows, then columns), as the chunks
of one array whose leading axes run over the pages.

Tiles are stored at full size, edge tiles included, so their grid is regular. Strips are as
tall as ``RowsPerStrip`` except the last, which holds only the rows left: when that is fewer,
the rows axis is an irregular grid (``refindex.grid``) whose last chunk decodes to its own
rows, which is how the store reads it exactly.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from refindex.errors import ContainerError
from refindex.grid import AxisChunks, ChunkGrid
from refindex.index import ABSENT, ChunkTable
from refindex.scan.tiff.compression import Refused


@dataclass(frozen=True)
class LevelLayout:
    """The array's shape, the chunk shape zarr is told, the grid (None when regular) and the
    chunk table."""

    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    grid: ChunkGrid | None
    table: ChunkTable


def level_layout(level, keyframe, source_of: Callable[[Any], tuple[int, int]],
                 raw_itemsize: int | None,
                 name: str) -> LevelLayout:
    """The layout of tifffile series level ``level`` (its ``keyframe`` describes every page).
    ``source_of`` gives the (source id, size in bytes) of the file a page lies in.
    ``raw_itemsize``: bytes per value when strips are stored uncompressed, else None."""
    shape = tuple(int(n) for n in level.shape)
    page_shape = tuple(int(n) for n in keyframe.shape)
    chunk = (1,) * (len(page_shape) - len(keyframe.chunks)) + tuple(int(n)
                                                                    for n in keyframe.chunks)
    chunked = tuple(int(n) for n in keyframe.chunked)
    lead = shape[:len(shape) - len(page_shape)]
    pages = list(level.pages)
    if (shape[len(lead):] != page_shape or len(chunked) != len(page_shape)
            or math.prod(lead) != len(pages)
            or any(-(-s // c) != n for s, c, n in zip(page_shape, chunk, chunked, strict=True))):
        raise Refused(f"a TIFF series of shape {shape} (axes {level.axes}) whose pages of shape "
                      f"{page_shape} in segments of {chunk} do not tile it")
    axes = [AxisChunks.regular(n, 1) for n in lead]
    for size, length in zip(page_shape, chunk, strict=True):
        axis = AxisChunks.regular(size, length)
        if not keyframe.is_tiled:  # the last strip holds only the rows left
            axis = AxisChunks(axis.edges, np.diff(axis.edges))
        axes.append(axis)
    grid = ChunkGrid(tuple(axes))
    table = ChunkTable(grid.counts)
    per_page = math.prod(chunked)
    stored = _stored_bytes(grid, len(lead), raw_itemsize) if raw_itemsize else None
    for number, page in enumerate(pages):
        if page is None:
            raise Refused(f"page {number} of a TIFF series, which tifffile could not find "
                          "(a file of a multi-file OME-TIFF missing or not readable from here)")
        source, size = source_of(page)
        offsets = np.asarray(page.dataoffsets, dtype=np.int64)
        counts = np.asarray(page.databytecounts, dtype=np.int64)
        if len(offsets) != per_page or len(counts) != per_page:
            raise ContainerError(f"{name}: TIFF page {page.index}: {len(offsets)} segment "
                                 f"offsets and {len(counts)} byte counts, but its shape needs "
                                 f"{per_page} strips or tiles")
        part = slice(number * per_page, (number + 1) * per_page)
        _fill(table, part, offsets, counts, stored, source, size, page, name)
    return LevelLayout(shape, tuple([1] * len(lead)) + chunk,
                       None if grid.regular_chunks() is not None else grid, table)


def _stored_bytes(grid: ChunkGrid, lead: int, itemsize: int) -> np.ndarray:
    """Bytes each segment of one page decodes to, in segment order."""
    sizes = [axis.stored for axis in grid.axes[lead:]]
    return functools.reduce(np.multiply, np.ix_(*sizes)).reshape(-1) * itemsize


def _fill(table: ChunkTable, part: slice, offsets: np.ndarray, counts: np.ndarray,
          stored: np.ndarray | None, source: int, size: int, page, name: str) -> None:
    empty = (counts == 0) | (offsets == 0)
    past = ~empty & ((offsets < 0) | (counts < 0) | (offsets + counts > size))
    if past.any():
        first = int(np.flatnonzero(past)[0])
        raise ContainerError(f"{name}: TIFF page {page.index}, segment {first}: bytes "
                             f"{int(offsets[first])} to {int(offsets[first] + counts[first])} "
                             f"reach past the end of the file ({size} bytes); the file is "
                             "truncated or its IFD is corrupt")
    lengths = counts
    if stored is not None:  # uncompressed: exactly the values' bytes (writers may pad)
        short = ~empty & (counts < stored)
        if short.any():
            first = int(np.flatnonzero(short)[0])
            raise ContainerError(f"{name}: TIFF page {page.index}, segment {first}: "
                                 f"{int(counts[first])} bytes, fewer than the "
                                 f"{int(stored[first])} its uncompressed values need")
        lengths = stored
    table.source[part] = np.where(empty, ABSENT, source)
    table.offset[part] = np.where(empty, 0, offsets)
    table.length[part] = np.where(empty, 0, lengths)
