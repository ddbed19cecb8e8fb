"""Where a dataset's bytes are: chunked, contiguous, compact, external or virtual storage,
as chunk references (source id, offset, length) or inline bytes."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import h5py
import numpy as np
from h5py import h5d

from refindex.index import ChunkTable
from refindex.scan.blocks import row_blocks
from refindex.scan.hdf5.chunk_index import (
    ADDRESS,
    FILTER_MASK,
    SIZE,
    check_lookups,
    chunk_records,
)

# Contiguous datasets larger than this are cut into row blocks, so that a slice of a
# 1 GiB variable does not have to fetch all of it (each block is a plain byte range).


@dataclass(frozen=True)
class Layout:
    """The chunking a dataset is exposed with and the references of its chunks.

    ``masks`` holds HDF5's per-chunk filter masks (chunked layout only, else all zero);
    ``kind`` names the HDF5 layout for messages.
    """

    kind: str
    chunk_shape: tuple[int, ...]
    table: ChunkTable
    masks: np.ndarray


class LayoutError(Exception):
    """The layout cannot be referenced; the message names the feature."""


def layout_kind(dset: h5py.Dataset) -> str:
    layout = dset.id.get_create_plist().get_layout()
    if layout == h5d.CHUNKED:
        return "chunked"
    if layout == h5d.COMPACT:
        return "compact"
    if layout == h5d.VIRTUAL:
        return "virtual"
    if dset.id.get_create_plist().get_external_count() > 0:
        return "external"
    return "contiguous"


def chunked_layout(dset: h5py.Dataset, source: int) -> Layout:
    """References of every written chunk (``chunk_iter``); unwritten chunks stay absent."""
    chunk_shape = tuple(dset.chunks)
    grid = tuple(-(-s // c) for s, c in zip(dset.shape, chunk_shape, strict=True))
    table = ChunkTable(grid)
    masks = np.zeros(len(table), dtype=np.uint32)
    records = chunk_records(dset) if math.prod(grid) else None
    if records is not None and len(records):
        check_lookups(dset, records)
        starts = records[:, : len(chunk_shape)]
        flat = np.ravel_multi_index((starts // np.asarray(chunk_shape, np.int64)).T, grid)
        table.source[flat] = source
        table.offset[flat] = records[:, ADDRESS]
        table.length[flat] = records[:, SIZE]
        masks[flat] = records[:, FILTER_MASK]
    return Layout("chunked", chunk_shape, table, masks)


def masks_by_use(layout: Layout) -> list[int]:
    """The filter masks written chunks have, most used first (``[0]`` when none are written)."""
    present = layout.masks[layout.table.present()]
    if present.size == 0:
        return [0]
    return [mask for mask, _ in Counter(present.tolist()).most_common()]


def contiguous_layout(dset: h5py.Dataset, source: int, file_size: int | None) -> Layout:
    """Contiguous storage as row blocks of about CONTIGUOUS_BLOCK bytes (one block when small);
    storage never allocated reads as the fill value."""
    shape = dset.shape
    address = dset.id.get_offset()
    room = file_size - address if address is not None and file_size is not None else None
    chunk_shape, grid = row_blocks(shape, dset.dtype.itemsize, room)
    table = ChunkTable(grid)
    if address is not None and dset.id.get_storage_size() > 0:
        block = math.prod(chunk_shape) * dset.dtype.itemsize
        for i in range(len(table)):
            table.set(i, source, address + i * block, block)
    return Layout("contiguous", chunk_shape, table, np.zeros(len(table), dtype=np.uint32))


def external_layout(dset: h5py.Dataset, resolve_source) -> Layout:
    """External raw storage: one chunk for a single segment, or one row block per segment when
    all segments are the same whole number of rows; anything else is a LayoutError.

    ``resolve_source(name)`` turns an external file name into a source id."""
    dcpl = dset.id.get_create_plist()
    segments = [dcpl.get_external(i) for i in range(dcpl.get_external_count())]
    shape = dset.shape
    total = math.prod(shape) * dset.dtype.itemsize
    row_bytes = math.prod(shape[1:]) * dset.dtype.itemsize if shape else total
    seg_bytes = segments[0][2]
    if len(segments) == 1:
        chunk_shape, block = shape, total
    elif (
        shape
        and row_bytes
        and seg_bytes % row_bytes == 0
        and all(size == seg_bytes for _, _, size in segments)
        and seg_bytes * len(segments) == total
    ):
        chunk_shape, block = (seg_bytes // row_bytes, *shape[1:]), seg_bytes
    else:
        raise LayoutError(
            f"external raw storage in {len(segments)} segments that are not "
            "equal whole numbers of rows"
        )
    grid = tuple(-(-s // c) for s, c in zip(shape, chunk_shape, strict=True))
    table = ChunkTable(grid)
    for i in range(len(table)):
        name, offset, _ = segments[i]
        table.set(
            i, resolve_source(name.decode() if isinstance(name, bytes) else name), offset, block
        )
    return Layout("external", tuple(chunk_shape), table, np.zeros(len(table), dtype=np.uint32))
