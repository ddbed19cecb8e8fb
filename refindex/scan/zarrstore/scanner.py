"""Build the Index of a Zarr store from its members: the hierarchy with v2 metadata inline,
and per array a chunk table of references into the archive (or the store's files)."""

from __future__ import annotations

import numpy as np

from refindex.errors import UnsupportedFeatureError
from refindex.index import ArrayNode, ChunkTable, Index, Source
from refindex.io import ReadEngine
from refindex.scan.left_out import leave_out
from refindex.scan.options import ScanOptions
from refindex.scan.protocol import Progress
from refindex.scan.zarrstore.arrays import ArraySpec
from refindex.scan.zarrstore.chunks import StoredChunks, assign_members, plain_chunk_table
from refindex.scan.zarrstore.hierarchy import read_hierarchy
from refindex.scan.zarrstore.members import MemberTable
from refindex.scan.zarrstore.shards import sharded_chunk_table


def scan_members(table: MemberTable, index: Index, engine: ReadEngine, options: ScanOptions,
                 progress: Progress | None = None) -> list[str]:
    """Add the Zarr store among ``table``'s members to ``index``; returns notes on members
    that are no part of the store. Arrays that cannot be referenced exactly go to
    ``index.left_out`` (see refindex.scan.left_out)."""
    hierarchy = read_hierarchy(table, engine)
    skipped = list(table.notes)
    for error in hierarchy.unsupported:
        leave_out(index, error.dataset, error, options)
    stored, notes = assign_members(table, hierarchy)
    skipped += notes
    sources = _SourceIds(index)
    for path, attrs in hierarchy.groups.items():
        index.groups[path] = attrs
    if "" in hierarchy.arrays:  # the store is one array: no root group beside it
        index.groups.pop("", None)
    for path, spec in hierarchy.arrays.items():
        ids = sources.ids(table, stored[path])
        try:
            node = _array(spec, stored[path], table, ids, engine)
        except UnsupportedFeatureError as error:
            leave_out(index, path, error, options)
            continue
        index.arrays[path] = node
        if progress:
            progress(path, len(node.chunks))
    return skipped


def _array(spec: ArraySpec, stored: StoredChunks, table: MemberTable, ids: np.ndarray,
           engine: ReadEngine) -> ArrayNode:
    zarray = spec.zarray
    chunks: ChunkTable
    if spec.shard is not None:
        chunks = sharded_chunk_table(spec, stored, table, ids, engine)
    else:
        chunks, zarray = plain_chunk_table(spec, stored, table, ids)
    return ArrayNode(spec.path, zarray, spec.attrs, chunks)


class _SourceIds:
    """The index's ids of a member table's sources, added on first use (a directory store
    has a source per file: a dict keeps adding them linear in their number)."""

    def __init__(self, index: Index) -> None:
        self.index = index
        self.known = {source.url: i for i, source in enumerate(index.sources)}

    def ids(self, table: MemberTable, stored: StoredChunks) -> np.ndarray:
        """Index ids by table source id (-1 for the sources ``stored`` does not use)."""
        ids = np.full(len(table.sources), -1, dtype=np.int32)
        for local in np.unique(table.column("source")[stored.rows]).tolist():
            ids[local] = self._id(table.sources[local])
        return ids

    def _id(self, source: Source) -> int:
        found = self.known.get(source.url)
        if found is None:
            found = self.known[source.url] = len(self.index.sources)
            self.index.sources.append(source)
        return found
