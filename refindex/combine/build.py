"""Building the combined index from the plan: member by member, columnar.

Each member is loaded once more, in the order of its positions; each of its tiles' chunk
tables is copied into the combined table in one block copy per column, its source ids mapped
to the combined sources — streamed part by part where the tiles are contiguous
(``tables.StreamedTable``), else in memory (``ChunkTable.put_block``). Tiles held by several
members are compared by a digest of their decoded values; arrays whose values must be
rewritten (CF times in different units) are read. The coordinates of the combined dimensions
become arrays stored in the sidecar.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numcodecs
import numpy as np
import ujson

from refindex.assemble import read_arrays
from refindex.combine import times
from refindex.combine.arrays import ArrayPlan, effective_attr, effective_units
from refindex.combine.dims import CombinedDim, listed
from refindex.combine.members import DIMENSIONS, MemberInfo
from refindex.combine.tables import StreamedTable
from refindex.index import ArrayNode, ChunkTable, Index, Source
from refindex.io import ReadEngine

_INLINE_CHUNK_BYTES = 4 * 2**20  # stored coordinate arrays are cut in chunks of this at most


class Builder:
    """Collects the combined sources, tables, digests and rewritten values member by member."""

    def __init__(self, infos: Sequence[MemberInfo], dims: list[CombinedDim],
                 plans: dict[str, ArrayPlan], engine: ReadEngine) -> None:
        self.infos = {info.number: info for info in infos}
        self.dims = {d.name: d for d in dims}
        self.plans = plans
        self.engine = engine
        self.sources: list[Source] = []
        self._source_ids: dict[str, int] = {}
        # Members in the order of their positions: streamed tables get their tiles in order,
        # each from the first member (in this order) that holds it.
        self.order = sorted(self.infos, key=lambda n: tuple(d.positions.get(n, -1)
                                                             for d in dims))
        rank = {number: i for i, number in enumerate(self.order)}
        for plan in plans.values():
            for holders in plan.tiles.values():
                holders.sort(key=rank.__getitem__)
        self.tables = {path: _table(plan) for path, plan in plans.items()
                       if plan.role == "table"}
        self.digests: dict[tuple[str, tuple], list[tuple[bytes, str]]] = {}
        self.rewritten: dict[str, dict[tuple, np.ndarray]] = {}

    def add(self, batch: list[tuple[int, Index]]) -> None:
        """Take the tiles of a batch of loaded members."""
        reads = []
        for number, index in batch:
            source_map = np.array([self._source_id(s) for s in index.sources] or [0],
                                  dtype=np.int32)
            for path, plan in self.plans.items():
                key = self.key(plan, number)
                if path not in index.arrays or key is None:
                    continue
                holders = plan.tiles[key]
                if plan.role == "table" and holders[0] == number:
                    self._place(plan, key, index.arrays[path], source_map)
                if (plan.role == "table" and len(holders) > 1) or plan.role == "rewrite":
                    reads.append((path, key, number, index))
        values = read_arrays([(index, path) for path, _, _, index in reads], self.engine)
        for (path, key, number, _), data in zip(reads, values, strict=True):
            if self.plans[path].role == "rewrite":
                self.rewritten.setdefault(path, {}).setdefault(key, self._in_target_units(
                    path, number, data))
            else:
                self.digests.setdefault((path, key), []).append(
                    (_digest(data), self.infos[number].name))

    def key(self, plan: ArrayPlan, number: int) -> tuple[int, ...] | None:
        try:
            return tuple(self.dims[d].positions[number] for d in plan.along)
        except KeyError:
            return None

    def _source_id(self, source: Source) -> int:
        known = self._source_ids.get(source.url)
        if known is None:
            known = self._source_ids[source.url] = len(self.sources)
            self.sources.append(source)
        return known

    def _place(self, plan: ArrayPlan, key: tuple[int, ...], node: ArrayNode,
               source_map: np.ndarray) -> None:
        start = []
        for name, position in zip(plan.along, key, strict=True):
            if self.dims[name].kind == "new":
                start.append(position)
        positions = dict(zip(plan.along, key, strict=True))
        for name in plan.dims[len(start):]:
            start.append(plan.starts[name][positions[name]] if name in plan.starts else 0)
        self.tables[plan.path].put_block(tuple(start), node.chunks, source_map)

    def _in_target_units(self, path: str, number: int, values: np.ndarray) -> np.ndarray:
        plan = self.plans[path]
        member = self.infos[number]
        reference = self.infos[plan.reference]
        calendar = effective_attr(member, path, "calendar")
        dates = times.decode(values, effective_units(member, path), calendar)
        return times.encode(dates, effective_units(reference, path), calendar,
                            np.dtype(reference.arrays[path].zarray["dtype"]))[0]

    def problems(self) -> list[str]:
        """Tiles whose holders' values differ."""
        found = []
        for (path, key), held in sorted(self.digests.items(), key=lambda item: item[0][0]):
            first, name = held[0]
            differing = [other for digest, other in held[1:] if digest != first]
            if differing:
                where = ", ".join(f"{d}={self.dims[d].label(p)}" for d, p in
                                  zip(self.plans[path].along, key, strict=True))
                found.append(f"{path}: values differ between members that should hold the same "
                             f"{path}{' at ' + where if where else ''}: {name} and "
                             f"{listed(differing)}")
        return found

    def index(self) -> Index:
        """The combined index (after every member was added)."""
        index = Index(sources=self.sources)
        for path, plan in self.plans.items():
            if plan.role == "table":
                table = self.tables[path]
                if isinstance(table, StreamedTable):
                    table = table.finish(len(self.sources), f"combined array {path!r}")
                index.arrays[path] = ArrayNode(path, plan.zarray, plan.attrs, table,
                                               plan.attr_dtypes, _irregular(plan))
            elif plan.role == "coordinate":
                index.arrays[path] = self._coordinate(plan)
            else:
                index.arrays[path] = self._rewritten(plan)
        for dim in self.dims.values():
            if dim.kind == "new":
                index.arrays[dim.name] = _new_coordinate(dim)
        return index

    def _coordinate(self, plan: ArrayPlan) -> ArrayNode:
        dim = self.dims[plan.path]
        reference = self.infos[plan.reference]
        dtype = np.dtype(reference.arrays[plan.path].zarray["dtype"])
        attrs = dict(plan.attrs)
        if dim.units_differ:
            values, units = self._one_unit(plan.path, dim, reference)
            attrs["units"] = units
        else:
            values = np.concatenate([np.asarray(v, dtype=dtype) for v in dim.values])
        return stored_array(plan.path, values.astype(dtype, copy=False), plan.zarray, attrs,
                            plan.attr_dtypes)

    def _one_unit(self, path: str, dim: CombinedDim, reference: MemberInfo
                  ) -> tuple[np.ndarray, str]:
        first = {p: number for number, p in sorted(dim.positions.items(), reverse=True)}
        dates = np.concatenate([times.decode(self.infos[first[p]].coords[path].values,
                                             self.infos[first[p]].coords[path].units,
                                             self.infos[first[p]].coords[path].calendar)
                                for p in range(dim.count)])
        coordinate = reference.coords[path]
        return times.encode(dates, coordinate.units, coordinate.calendar,
                            np.dtype(reference.arrays[path].zarray["dtype"]))

    def _rewritten(self, plan: ArrayPlan) -> ArrayNode:
        dtype = np.dtype(self.infos[plan.reference].arrays[plan.path].zarray["dtype"])
        values = np.empty(plan.grid.shape, dtype=dtype)
        for key, part in self.rewritten.get(plan.path, {}).items():
            values[self._element_block(plan, key, part.shape)] = part
        return stored_array(plan.path, values, plan.zarray, plan.attrs, plan.attr_dtypes)

    def _element_block(self, plan: ArrayPlan, key: tuple[int, ...],
                       shape: tuple[int, ...]) -> tuple[slice, ...]:
        positions = dict(zip(plan.along, key, strict=True))
        block = [slice(positions[d], positions[d] + 1) for d in plan.along
                 if self.dims[d].kind == "new"]
        for axis, name in enumerate(plan.dims[len(block):]):
            if name in positions:
                dim = self.dims[name]
                start = sum(dim.lengths[:positions[name]])
                block.append(slice(start, start + shape[axis]))
            else:
                block.append(slice(None))
        return tuple(block)


def _table(plan: ArrayPlan) -> ChunkTable | StreamedTable:
    """Streamed when the array's combined dimensions are its leading axes (its tiles are then
    contiguous runs of its table, in order), else filled in memory."""
    if plan.dims[:len(plan.along)] == plan.along:
        return StreamedTable(plan.grid.counts)
    return ChunkTable(plan.grid.counts)


def _irregular(plan: ArrayPlan):
    return None if plan.grid.regular_chunks() is not None else plan.grid


def _digest(values: np.ndarray) -> bytes:
    """Of the decoded values, bit for bit (NaNs with their payloads), with shape and dtype."""
    digest = hashlib.blake2b(f"{values.dtype.str}{values.shape}".encode(), digest_size=16)
    if values.dtype == object:
        digest.update(ujson.dumps(values.ravel().tolist()).encode())
    else:
        digest.update(np.ascontiguousarray(values).view(np.uint8).tobytes())
    return digest.digest()


def stored_array(path: str, values: np.ndarray, like: dict, attrs: dict,
                 attr_dtypes: dict) -> ArrayNode:
    """An array whose values are stored in the sidecar (in chunks of at most 4 MiB along the
    first axis; numbers shuffled and zstd-compressed: a time axis of evenly spaced values
    costs a few bytes), with ``like``'s fill value."""
    values = np.ascontiguousarray(values)
    shape = values.shape
    rows = max(1, _INLINE_CHUNK_BYTES // max(1, values[:1].nbytes)) if values.ndim else 1
    chunks = [min(rows, shape[0]) or 1, *shape[1:]] if values.ndim else []
    numeric = values.dtype.kind in "biufcmM"
    filters = [{"id": "shuffle", "elementsize": values.dtype.itemsize}] if numeric else None
    compressor = {"id": "zstd", "level": 9, "checksum": False}
    zarray = {"zarr_format": 2, "shape": list(shape), "chunks": chunks,
              "dtype": values.dtype.str, "fill_value": like.get("fill_value"), "order": "C",
              "compressor": compressor, "filters": filters}
    encoders = [numcodecs.get_codec(dict(c)) for c in (filters or [])] + [
        numcodecs.get_codec(dict(compressor))]
    if like.get("dimension_separator"):
        zarray["dimension_separator"] = like["dimension_separator"]
    grid = (-(-shape[0] // chunks[0]),) + (1,) * (values.ndim - 1) if values.ndim else ()
    table = ChunkTable(grid)
    for flat in range(len(table)):
        block = values[flat * chunks[0]:(flat + 1) * chunks[0]] if values.ndim else values
        if values.ndim and block.shape[0] < chunks[0]:  # the last chunk, stored full size
            padded = np.zeros((chunks[0], *shape[1:]), dtype=values.dtype)
            padded[:block.shape[0]] = block
            block = padded
        data = np.ascontiguousarray(block)
        for encoder in encoders:
            data = encoder.encode(data)
        table.set_inline(flat, bytes(data))
    return ArrayNode(path, zarray, attrs, table, attr_dtypes)


def _new_coordinate(dim: CombinedDim) -> ArrayNode:
    values = np.concatenate(dim.values)
    if values.dtype.kind in "US":
        values = values.astype(f"<U{max(1, max(len(str(v)) for v in values))}")
    return stored_array(dim.name, values, {"fill_value": None}, {DIMENSIONS: [dim.name]}, {})
