"""The members of a combine: loaded one at a time, summarised in what planning needs.

Members are given as sidecar files (or directories), or as Index objects. Planning sees a
``MemberInfo`` per member — its arrays' dimensions, shapes, chunking and decoding metadata,
its group attributes and the values of its dimension coordinates — never its chunk tables;
those are read once more, member by member, when the combined tables are built. Metadata that
members share (the same codecs, attributes) is held once (``Interned``).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import ujson

from refindex.assemble import read_arrays
from refindex.grid import AxisChunks
from refindex.index import ArrayNode, Index
from refindex.io import ReadEngine
from refindex.sidecar import load_index

MemberInput = str | os.PathLike | Index
BATCH = 64  # members loaded, and their coordinates read, at once
KEEP_BYTES = 64 * 2**20  # members' sidecars up to this many bytes in all stay loaded

# Attributes that change how values decode: members must agree on them (and their types).
CF_ATTRS = ("scale_factor", "add_offset", "_FillValue", "missing_value", "units", "calendar",
            "_Unsigned")
DIMENSIONS = "_ARRAY_DIMENSIONS"
# Codec parameters that only matter when encoding: any value decodes the same bytes.
_ENCODE_ONLY = {"zlib": ("level",), "refindex.zlib": ("level",), "gzip": ("level",),
                "zstd": ("level",), "bz2": ("level",), "lzma": ("preset",),
                "blosc": ("clevel", "cname", "shuffle", "blocksize"), "lz4": ("acceleration",)}


class Interned:
    """One shared object per distinct JSON value: ten thousand members with the same
    attributes hold them once."""

    def __init__(self) -> None:
        self._known: dict[str, object] = {}

    def __call__(self, value):
        key = ujson.dumps(value, sort_keys=True)
        return self._known.setdefault(key, value)


@dataclass(frozen=True)
class Coordinate:
    """A member's dimension coordinate: its raw values, dtype and CF time attributes."""

    values: np.ndarray
    units: str | None
    calendar: str | None


@dataclass
class ArrayInfo:
    """What planning needs of one array of one member."""

    dims: tuple[str, ...]
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    axes: tuple[AxisChunks, ...] | None  # only for members that are irregular themselves
    decoding: dict  # dtype, codecs, fill value, order, CF attributes and their types
    zarray: dict
    attrs: dict
    attr_dtypes: dict

    def axis(self, number: int) -> AxisChunks:
        """The chunks of axis ``number``."""
        if self.axes is not None:
            return self.axes[number]
        return AxisChunks.regular(self.shape[number], self.chunks[number])


@dataclass
class MemberInfo:
    """One member as planning sees it."""

    number: int
    name: str  # its (first) source's URL, or the sidecar's path
    arrays: dict[str, ArrayInfo]
    groups: dict[str, dict]
    generator: str = "refindex"  # the name of what wrote its sidecar
    left_out: dict[str, str] = field(default_factory=dict)  # arrays its scan left out
    coords: dict[str, Coordinate] = field(default_factory=dict)
    group_attr_dtypes: dict[str, dict] = field(default_factory=dict)

    @property
    def file_name(self) -> str:
        return posixpath.basename(self.name.rstrip("/")) or self.name


class Members:
    """The inputs of a combine, loaded one at a time with ``load``.

    Members loaded for planning are kept for building, unless their sidecars hold more than
    ``keep_bytes`` together: then building loads each again (parsing is cheap, memory is
    what bounds a combine of a hundred thousand members)."""

    def __init__(self, inputs: Sequence[MemberInput], read_options=None,
                 keep_bytes: int = KEEP_BYTES) -> None:
        self.inputs = list(inputs)
        self.read_options = read_options
        sizes = [_local_size(given) for given in self.inputs]
        self._keep = None not in sizes and sum(sizes) <= keep_bytes
        self._kept: dict[int, Index] = {}

    def __len__(self) -> int:
        return len(self.inputs)

    def load(self, number: int) -> Index:
        kept = self._kept.pop(number, None)
        if kept is not None:
            return kept
        given = self.inputs[number]
        if isinstance(given, Index):
            return given
        index = load_index(given, self.read_options)
        if self._keep:
            self._kept[number] = index
        return index

    def name(self, number: int, index: Index) -> str:
        if index.sources:
            return index.sources[0].url
        given = self.inputs[number]
        return "<index>" if isinstance(given, Index) else os.fspath(given)

    def batches(self, numbers: Sequence[int] | None = None) -> Iterator[list[tuple[int, Index]]]:
        """``(number, index)`` of members ``numbers`` (all by default), ``BATCH`` at a time."""
        numbers = list(range(len(self))) if numbers is None else list(numbers)
        for start in range(0, len(numbers), BATCH):
            yield [(n, self.load(n)) for n in numbers[start:start + BATCH]]


def _local_size(given: MemberInput) -> int | None:
    """Bytes of a member's sidecar file (0 for an Index; None when not a local file)."""
    if isinstance(given, Index):
        return 0
    try:
        return os.path.getsize(given)
    except OSError:
        return None


def summarize(members: Members, dims: Sequence[str] | None, engine: ReadEngine
              ) -> list[MemberInfo]:
    """Every member's ``MemberInfo``, with the values of the coordinates of ``dims`` (None:
    of every dimension coordinate), read for ``BATCH`` members at a time."""
    interned = Interned()
    infos = []
    for batch in members.batches():
        summaries = [_summary(number, members.name(number, index), index, interned)
                     for number, index in batch]
        wanted = [(info, index, dim) for info, (_, index) in zip(summaries, batch, strict=True)
                  for dim in _coordinate_dims(index, dims)]
        values = read_arrays([(index, dim) for _, index, dim in wanted], engine)
        for (info, index, dim), data in zip(wanted, values, strict=True):
            attrs = index.arrays[dim].attrs
            info.coords[dim] = Coordinate(data, attrs.get("units"), attrs.get("calendar"))
        infos.extend(summaries)
    return infos


def _coordinate_dims(index: Index, dims: Sequence[str] | None) -> list[str]:
    """The dimensions of ``dims`` (None: all) whose coordinate the member has: a root array
    named like the dimension, with that one dimension."""
    found = []
    for path, node in index.arrays.items():
        if "/" not in path and tuple(node.attrs.get(DIMENSIONS, ())) == (path,) and (
                dims is None or path in dims):
            found.append(path)
    return found


def _summary(number: int, name: str, index: Index, interned: Interned) -> MemberInfo:
    arrays = {path: _array_info(node, interned) for path, node in index.arrays.items()}
    groups = {path: interned(attrs) for path, attrs in index.groups.items()}
    group_dtypes = {path: interned(dtypes) for path, dtypes in index.group_attr_dtypes.items()}
    return MemberInfo(number, name, arrays, groups, index.generator.get("name") or "refindex",
                      left_out=dict(index.left_out), group_attr_dtypes=group_dtypes)


def _array_info(node: ArrayNode, interned: Interned) -> ArrayInfo:
    zarray = node.zarray
    dims = tuple(node.attrs.get(DIMENSIONS) or (f"phony_dim_{i}" for i in range(len(
        zarray["shape"]))))
    cf = {name: node.attrs[name] for name in CF_ATTRS if name in node.attrs}
    cf_types = {name: node.attr_dtypes[name] for name in CF_ATTRS if name in node.attr_dtypes}
    decoding = {"dtype": zarray["dtype"], "fill_value": zarray.get("fill_value"),
                "order": zarray.get("order", "C"),
                "codecs": decoding_codecs(zarray), "cf": cf, "cf_types": cf_types}
    axes = node.grid.axes if node.grid is not None else None
    return ArrayInfo(dims, tuple(zarray["shape"]), tuple(zarray["chunks"]), axes,
                     interned(decoding), interned(zarray), interned(node.attrs),
                     interned(node.attr_dtypes))


def decoding_codecs(zarray: dict) -> list:
    """The compressor and filters of ``zarray`` without parameters that only matter when
    encoding (a zlib level): what decides how stored bytes decode."""
    def essential(config):
        if not isinstance(config, dict):
            return config
        dropped = _ENCODE_ONLY.get(config.get("id"), ())
        return {k: v for k, v in config.items() if k not in dropped}

    return [essential(zarray.get("compressor"))] + [essential(f) for f in
                                                    zarray.get("filters") or ()]
