"""Contiguous values cut into row blocks: a large contiguous array (HDF5 contiguous storage,
a NetCDF3 variable) is referenced as blocks of about ``CONTIGUOUS_BLOCK`` bytes along its
first axis, so that reading a slice need not fetch all of it."""

from __future__ import annotations

import math

CONTIGUOUS_BLOCK = 8 * 1024 * 1024


def row_blocks(shape: tuple[int, ...], itemsize: int,
               room: int | None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Chunk shape and chunk grid of ``shape`` stored contiguously, cut along its first axis
    into blocks of about CONTIGUOUS_BLOCK bytes (one block when small). ``room``: bytes from
    the start of the values to the end of the file (None: unknown)."""
    if not shape:
        return (), ()
    rows = _rows_per_block(shape, itemsize, room)
    return (rows, *shape[1:]), (-(-shape[0] // rows), *([1] * (len(shape) - 1)))


def _rows_per_block(shape: tuple[int, ...], itemsize: int, room: int | None) -> int:
    if shape[0] == 0:
        return 1
    row_bytes = math.prod(shape[1:]) * itemsize
    total = shape[0] * row_bytes
    if total <= CONTIGUOUS_BLOCK or row_bytes == 0:
        return shape[0]
    rows = max(1, CONTIGUOUS_BLOCK // row_bytes)
    # A divisor of the row count keeps every block inside the dataset's bytes.
    for candidate in range(rows, max(rows // 8, 1) - 1, -1):
        if shape[0] % candidate == 0:
            return candidate
    # Otherwise the last block reaches past the dataset (Zarr wants full-size chunks and
    # crops them); that is only safe while it stays inside the file.
    if room is not None and -(-shape[0] // rows) * rows * row_bytes <= room:
        return rows
    return shape[0]
