"""Where an MRC file's values are: one contiguous block after the header and the extended
header, shaped as mrcfile shapes it, referenced as row blocks along the slowest axis (a volume
stack as row blocks of each volume) so that a slice fetches only what it needs."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from refindex.errors import ContainerError
from refindex.index import ChunkTable
from refindex.scan.blocks import row_blocks
from refindex.scan.mrc.header import MODE_DTYPES, Header, is_volume_stack


@dataclass(frozen=True)
class DataLayout:
    """The data array's shape, dimension names, stored dtype, chunk shape and chunk table."""

    shape: tuple[int, ...]
    dims: tuple[str, ...]
    dtype: np.dtype
    chunk_shape: tuple[int, ...]
    table: ChunkTable


def data_shape(header: Header) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """The shape and dimension names mrcfile gives the data: ``(y, x)`` for one image (ispg
    0, nz 1), ``(stack, y, x)`` for an image stack, ``(z, y, x)`` for a volume and
    ``(stack, z, y, x)`` for a volume stack (ispg 401..630, volumes of mz sections). Sections,
    rows and columns are named by ``maps``, ``mapr``, ``mapc`` when those are a permutation of
    1, 2, 3 (x, y, z), as they are unless a crystallographic map is stored transposed."""
    nx, ny, nz = header.integer("nx"), header.integer("ny"), header.integer("nz")
    section, row, column = _axis_names(header)
    if is_volume_stack(header):
        mz = header.integer("mz")
        return (nz // mz, mz, ny, nx), ("stack", section, row, column)
    if header.integer("ispg") == 0:
        if nz == 1:
            return (ny, nx), (row, column)
        return (nz, ny, nx), ("stack", row, column)
    return (nz, ny, nx), (section, row, column)


def _axis_names(header: Header) -> tuple[str, str, str]:
    order = (header.integer("maps"), header.integer("mapr"), header.integer("mapc"))
    if sorted(order) != [1, 2, 3]:
        return "z", "y", "x"
    return tuple("xyz"[axis - 1] for axis in order)


def data_layout(header: Header, source: int, file_size: int, name: str) -> DataLayout:
    """The chunk references of the data of a file whose mode has a dtype (``MODE_DTYPES``);
    a ContainerError when the data would reach past the end of the file."""
    dtype = np.dtype(MODE_DTYPES[header.integer("mode")]).newbyteorder(header.byte_order)
    shape, dims = data_shape(header)
    start = header.data_offset
    end = start + math.prod(shape) * dtype.itemsize
    if end > file_size:
        nx, ny, nz, mode = (header.integer(f) for f in ("nx", "ny", "nz", "mode"))
        raise ContainerError(f"{name}: MRC data (nx {nx} × ny {ny} × nz {nz} values of mode "
                             f"{mode}) "
                             f"ends at byte {end} but the file has {file_size} bytes; the "
                             "file is truncated or the header is wrong")
    if len(shape) == 4:
        return _volume_stack(shape, dims, dtype, start, source, file_size)
    chunk_shape, grid = row_blocks(shape, dtype.itemsize, file_size - start)
    table = ChunkTable(grid)
    block = math.prod(chunk_shape) * dtype.itemsize
    table.source[:] = source
    table.offset[:] = start + np.arange(len(table), dtype=np.int64) * block
    table.length[:] = block
    return DataLayout(shape, dims, dtype, chunk_shape, table)


def _volume_stack(shape: tuple[int, ...], dims: tuple[str, ...], dtype: np.dtype, start: int,
                  source: int, file_size: int) -> DataLayout:
    """Each volume cut into row blocks of sections: chunks of shape ``(1, rows, ny, nx)``."""
    volumes, volume = shape[0], shape[1:]
    volume_bytes = math.prod(volume) * dtype.itemsize
    # What a block of the last volume may read past its own values must stay in the file.
    room = file_size - start - max(volumes - 1, 0) * volume_bytes
    inner_chunks, inner_grid = row_blocks(volume, dtype.itemsize, room)
    table = ChunkTable((volumes, *inner_grid))
    block = math.prod(inner_chunks) * dtype.itemsize
    starts = np.add.outer(np.arange(volumes, dtype=np.int64) * volume_bytes,
                          np.arange(math.prod(inner_grid), dtype=np.int64) * block)
    table.source[:] = source
    table.offset[:] = start + starts.reshape(-1)
    table.length[:] = block
    return DataLayout(shape, dims, dtype, (1, *inner_chunks), table)
