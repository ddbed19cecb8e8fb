"""Which members are the stored chunks (or shards) of which array, and the chunk table of an
unsharded array: one reference per member, into the archive or to the member's own file."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

import numpy as np

from refindex.errors import UnsupportedFeatureError
from refindex.index import ChunkTable
from refindex.scan.zarrstore.arrays import ArraySpec
from refindex.scan.zarrstore.hierarchy import METADATA_NAMES, Hierarchy
from refindex.scan.zarrstore.members import DEFLATED, STORED, MemberTable, method_name

_EXAMPLES = 3  # keys named in a note about members that are no chunk


@dataclass(frozen=True)
class StoredChunks:
    """The members holding one array's stored objects: table ``rows`` and their grid
    ``coords`` (one row of coordinates each), the last of duplicate keys only."""

    rows: np.ndarray
    coords: np.ndarray

    def flat(self, grid: tuple[int, ...]) -> np.ndarray:
        """Positions of the stored objects in C order of ``grid``."""
        if not grid:
            return np.zeros(len(self.rows), dtype=np.int64)
        return np.ravel_multi_index(tuple(self.coords.T), grid).astype(np.int64)


def assign_members(table: MemberTable, hierarchy: Hierarchy) -> tuple[
        dict[str, StoredChunks], list[str]]:
    """The stored chunks of every array, and notes on the store's members that are neither
    metadata nor chunks inside an array's grid."""
    found: dict[str, tuple[list[int], list[tuple[int, ...]]]] = {
        path: ([], []) for path in hierarchy.arrays}
    strays: list[str] = []
    prefix = f"{hierarchy.root}/" if hierarchy.root else ""
    # Arrays left out as unsupported still own their chunks: those are no strays.
    owners = set(hierarchy.arrays) | {error.dataset for error in hierarchy.unsupported}
    for row, key in enumerate(table.keys):
        if not key.startswith(prefix) or posixpath.basename(key) in METADATA_NAMES:
            continue
        relative = key[len(prefix):]
        path = _array_of(relative, owners)
        if path is not None and path not in hierarchy.arrays:
            continue
        spec = hierarchy.arrays.get(path) if path is not None else None
        coords = None if spec is None else spec.keys.coords(
            relative[len(path) + 1:] if path else relative)
        if coords is None or any(c >= n for c, n in zip(coords, spec.grid, strict=True)):
            strays.append(key)
            continue
        rows, coordinates = found[path]
        rows.append(row)
        coordinates.append(coords)
    stored = {path: _last_of_duplicates(hierarchy.arrays[path], rows, coordinates)
              for path, (rows, coordinates) in found.items()}
    notes = []
    if strays:
        named = ", ".join(repr(key) for key in strays[:_EXAMPLES])
        notes.append(f"{len(strays)} member(s) are neither Zarr metadata nor chunks of an "
                     f"array of the store (e.g. {named}): not referenced")
    return stored, notes


def _array_of(key: str, arrays: set[str]) -> str | None:
    """The array whose directory holds ``key`` (the innermost one), else None."""
    end = len(key)
    while end > 0:
        end = key.rfind("/", 0, end)
        candidate = key[:end] if end > 0 else ""
        if candidate in arrays:
            return candidate
    return None


def _last_of_duplicates(spec: ArraySpec, rows: list[int],
                        coordinates: list[tuple[int, ...]]) -> StoredChunks:
    coords = np.array(coordinates, dtype=np.int64).reshape(len(rows), len(spec.grid))
    chunks = StoredChunks(np.array(rows, dtype=np.int64), coords)
    flat = chunks.flat(spec.grid)
    # Rows are in archive order: keep the last row of each position, as tar extraction does.
    _, last = np.unique(flat[::-1], return_index=True)
    keep = np.sort(len(flat) - 1 - last)
    return StoredChunks(chunks.rows[keep], chunks.coords[keep])


def plain_chunk_table(spec: ArraySpec, stored: StoredChunks, table: MemberTable,
                      source_ids: np.ndarray) -> tuple[ChunkTable, dict]:
    """The chunk table of an unsharded array (a reference per stored chunk, the others
    absent) and its v2 metadata, given the index's ids of the table's sources. Deflated zip
    members gain a raw-deflate codec that decodes them first."""
    chunks = ChunkTable(spec.chunk_grid)
    flat = stored.flat(spec.grid)
    chunks.source[flat] = source_ids[table.column("source")[stored.rows]]
    chunks.offset[flat] = table.column("offset")[stored.rows]
    chunks.length[flat] = table.column("size")[stored.rows]
    return chunks, _with_member_codec(spec, stored, table)


def _with_member_codec(spec: ArraySpec, stored: StoredChunks, table: MemberTable) -> dict:
    methods = table.column("method")[stored.rows]
    kinds = set(np.unique(methods).tolist())
    if kinds <= {STORED}:
        return spec.zarray
    odd = kinds - {STORED, DEFLATED}
    if odd or kinds == {STORED, DEFLATED}:
        method = next(iter(odd)) if odd else STORED
        row = int(stored.rows[np.flatnonzero(methods == method)[0]])
        feature = (f"chunk {table.keys[row]!r} is a zip member with {method_name(method)}"
                   if odd else "chunks stored both deflated and uncompressed in the zip")
        raise UnsupportedFeatureError(table.where, spec.path, feature,
                                      "re-create the zip with every member stored (zip -0)")
    # Decoding runs the compressor first, then the filters backwards: inflating the zip's
    # deflate stream must come first, so the array's own compressor becomes the last filter.
    zarray = dict(spec.zarray)
    inner = [zarray["compressor"]] if zarray.get("compressor") else []
    zarray["filters"] = [*(zarray.get("filters") or []), *inner] or None
    zarray["compressor"] = {"id": "refindex.deflate"}
    return zarray
