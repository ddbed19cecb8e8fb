"""Small dimension coordinates copied into the sidecar at scan time.

xarray reads every dimension coordinate when it opens a dataset (to build its indexes), and
combining a collection orders members by them: referenced, each costs a request per file and
reader. They are small, and their bytes are usually in the block the scanner has just read
(netCDF4 writes small variables next to the metadata), so copying them costs nothing more.
"""

from __future__ import annotations

import posixpath
from typing import BinaryIO

from refindex.index import ArrayNode, Index

DIMENSIONS = "_ARRAY_DIMENSIONS"


def inline_coordinates(index: Index, source_id: int, fileobj: BinaryIO, limit: int) -> None:
    """Store in ``index`` the chunks of each 1-D array named like its dimension whose chunks
    all lie in source ``source_id`` (read from ``fileobj``) and hold ``limit`` bytes at most."""
    if limit <= 0:
        return
    for path, node in index.arrays.items():
        if _is_dimension_coordinate(path, node):
            _inline(node, source_id, fileobj, limit)


def _is_dimension_coordinate(path: str, node: ArrayNode) -> bool:
    dims = node.attrs.get(DIMENSIONS)
    return (not node.irregular and len(node.zarray["shape"]) == 1
            and list(dims or ()) == [posixpath.basename(path)])


def _inline(node: ArrayNode, source_id: int, fileobj: BinaryIO, limit: int) -> None:
    table = node.chunks
    present = table.present()
    source, offset, length = table.source[present], table.offset[present], table.length[present]
    referenced = source >= 0
    if (source[referenced] != source_id).any() or (length[referenced] < 0).any():
        return  # external files or whole-object references: leave them referenced
    if int(length[referenced].sum()) > limit:
        return
    for flat, start, size in zip(present[referenced].tolist(),
                                 offset[referenced].tolist(), length[referenced].tolist(),
                                 strict=True):
        fileobj.seek(start)
        data = fileobj.read(size)
        if len(data) != size:
            return  # a truncated file: its references stay, and reading them says so
        table.set_inline(flat, data)
