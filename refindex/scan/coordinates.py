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
    for node, chunks in _coordinate_tables(index, source_id, limit):
        datas = []
        for _, start, size in chunks:
            fileobj.seek(start)
            data = fileobj.read(size)
            if len(data) != size:
                break  # a truncated file: its references stay, and reading them says so
            datas.append(data)
        else:
            for (flat, _, _), data in zip(chunks, datas, strict=True):
                node.chunks.set_inline(flat, data)


def coordinate_chunks(index: Index, source_id: int, limit: int
                      ) -> list[tuple[ArrayNode, int, int, int]]:
    """The chunks :func:`inline_coordinates` would copy, as (array, flat position, offset,
    length), for a caller that fetches them itself (all at once)."""
    return [(node, flat, offset, length)
            for node, chunks in _coordinate_tables(index, source_id, limit)
            for flat, offset, length in chunks]


def _coordinate_tables(index: Index, source_id: int, limit: int
                       ) -> list[tuple[ArrayNode, list[tuple[int, int, int]]]]:
    if limit <= 0:
        return []
    found = []
    for path, node in index.arrays.items():
        if _is_dimension_coordinate(path, node):
            chunks = _chunks_to_copy(node, source_id, limit)
            if chunks:
                found.append((node, chunks))
    return found


def _is_dimension_coordinate(path: str, node: ArrayNode) -> bool:
    dims = node.attrs.get(DIMENSIONS)
    return (not node.irregular and len(node.zarray["shape"]) == 1
            and list(dims or ()) == [posixpath.basename(path)])


def _chunks_to_copy(node: ArrayNode, source_id: int, limit: int) -> list[tuple[int, int, int]]:
    """(flat position, offset, length) of the referenced chunks of ``node``, when all lie in
    ``source_id`` and hold ``limit`` bytes at most; else none."""
    table = node.chunks
    present = table.present()
    source, offset, length = table.source[present], table.offset[present], table.length[present]
    referenced = source >= 0
    if (source[referenced] != source_id).any() or (length[referenced] < 0).any():
        return []  # external files or whole-object references: leave them referenced
    if int(length[referenced].sum()) > limit:
        return []
    return list(zip(present[referenced].tolist(), offset[referenced].tolist(),
                    length[referenced].tolist(), strict=True))
