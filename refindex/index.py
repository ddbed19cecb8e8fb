"""The in-memory index: sources, the group/array hierarchy with Zarr v2 metadata, and per array
a columnar chunk table (NumPy arrays in chunk-grid C order, never a Python object per chunk)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from numpy.dtypes import StringDType

ABSENT = -1  # source id of a chunk that was never written: readers see the fill value
INLINE = -2  # source id of a chunk whose bytes live in ChunkTable.inline
WHOLE = -1  # length of a reference to a whole object (kerchunk's one-element ``[url]``)


@dataclass(frozen=True)
class Source:
    """One object that chunk bytes are read from, as it was when scanned.

    ``size`` is in bytes; ``etag`` and ``last_modified`` are as the server reported them.
    """

    url: str
    size: int | None = None
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class ChunkRef:
    """Where one chunk's bytes are: a source id, byte offset and byte length, or inline bytes."""

    source: int
    offset: int = 0
    length: int = 0
    data: bytes | None = None


class ChunkTable:
    """Chunk references of one array, columnar, in C order of the chunk grid.

    ``source[i]`` is a source id, ``ABSENT`` or ``INLINE``; ``offset`` and ``length`` are bytes
    (``length == WHOLE`` means the whole object). Inline chunk bytes live in ``inline``.
    """

    __slots__ = ("grid", "source", "offset", "length", "inline")

    def __init__(self, grid: tuple[int, ...]) -> None:
        self.grid = tuple(int(n) for n in grid)
        count = math.prod(self.grid)
        self.source = np.full(count, ABSENT, dtype=np.int32)
        self.offset = np.zeros(count, dtype=np.int64)
        self.length = np.zeros(count, dtype=np.int64)
        self.inline: dict[int, bytes] = {}

    def __len__(self) -> int:
        return self.source.size

    def flat_index(self, coords: tuple[int, ...]) -> int:
        """Position of the chunk at grid ``coords`` in the columns; IndexError when outside."""
        if len(coords) != len(self.grid) or any(
            not 0 <= c < n for c, n in zip(coords, self.grid, strict=True)
        ):
            raise IndexError(f"chunk {coords} outside grid {self.grid}")
        return int(np.ravel_multi_index(coords, self.grid)) if self.grid else 0

    def coords(self, flat: int) -> tuple[int, ...]:
        """Grid coordinates of the chunk at position ``flat`` of the columns."""
        coords = []
        for n in reversed(self.grid):
            flat, c = divmod(flat, n)
            coords.append(c)
        return tuple(reversed(coords))

    def set(self, flat: int, source: int, offset: int, length: int) -> None:
        self.source[flat], self.offset[flat], self.length[flat] = source, offset, length

    def set_inline(self, flat: int, data: bytes) -> None:
        self.source[flat] = INLINE
        self.inline[flat] = bytes(data)

    def get(self, flat: int) -> ChunkRef:
        source = int(self.source[flat])
        if source == INLINE:
            return ChunkRef(INLINE, data=self.inline[flat])
        return ChunkRef(source, int(self.offset[flat]), int(self.length[flat]))

    def present(self) -> np.ndarray:
        """Flat positions of the chunks that exist (referenced or inline)."""
        return np.flatnonzero(self.source != ABSENT)

    def referenced_bytes(self) -> int:
        """Bytes held by references to sources (whole-object references count as 0)."""
        mask = self.source >= 0
        return int(self.length[mask].clip(min=0).sum())

    def inline_bytes(self) -> int:
        return sum(len(b) for b in self.inline.values())


@dataclass
class ArrayNode:
    """One Zarr v2 array: its ``.zarray`` metadata, ``.zattrs`` and chunk table."""

    path: str
    zarray: dict
    attrs: dict
    chunks: ChunkTable
    attr_dtypes: dict[str, str] = field(default_factory=dict)
    """NumPy dtypes of numeric attributes that JSON does not carry (e.g. float32)."""

    @property
    def separator(self) -> str:
        return self.zarray.get("dimension_separator") or "."

    def chunk_key(self, coords: tuple[int, ...]) -> str:
        name = self.separator.join(str(c) for c in coords) if coords else "0"
        return f"{self.path}/{name}" if self.path else name

    def present_keys(self) -> Iterator[tuple[str, int]]:
        """(chunk key, flat position) of every chunk that exists, in grid order."""
        flat = self.chunks.present()
        yield from zip(self.chunk_keys(flat), flat.tolist(), strict=True)

    def chunk_keys(self, flat: np.ndarray) -> list[str]:
        """Chunk keys of the chunks at positions ``flat``, built with vectorised string
        operations (a Python loop per chunk costs seconds per million chunks)."""
        prefix = f"{self.path}/" if self.path else ""
        if not self.chunks.grid:
            return [prefix + "0"] * len(flat)
        keys = np.full(len(flat), prefix, dtype=StringDType())
        for axis, coords in enumerate(np.unravel_index(flat, self.chunks.grid)):
            if axis:
                keys = np.strings.add(keys, self.separator)
            keys = np.strings.add(keys, coords.astype(StringDType()))
        return keys.tolist()

    def parse_chunk_name(self, name: str) -> tuple[int, ...] | None:
        """Grid coordinates of a chunk key relative to this array, or None if not a chunk key."""
        parts = name.split(self.separator)
        if not all(p.isdigit() for p in parts):
            return None
        coords = tuple(int(p) for p in parts)
        if not self.chunks.grid:
            return () if coords == (0,) else None
        return coords if len(coords) == len(self.chunks.grid) else None


@dataclass
class Index:
    """Everything a sidecar says: sources, groups (path -> attrs) and arrays (path -> node).

    The root group has path ``""``. ``extra`` holds keys a foreign sidecar had that are
    neither metadata nor chunks of a known array (kept so that round trips lose nothing).
    """

    sources: list[Source] = field(default_factory=list)
    groups: dict[str, dict] = field(default_factory=lambda: {"": {}})
    arrays: dict[str, ArrayNode] = field(default_factory=dict)
    extra: dict[str, ChunkRef] = field(default_factory=dict)
    generator: dict = field(default_factory=dict)

    def add_source(self, source: Source) -> int:
        """Id of ``source``, adding it when no source with its URL is known yet."""
        for i, known in enumerate(self.sources):
            if known.url == source.url:
                return i
        self.sources.append(source)
        return len(self.sources) - 1

    def find_chunk(self, key: str) -> tuple[ArrayNode, tuple[int, ...]] | None:
        """The array a chunk key belongs to and the chunk's grid coordinates, or None."""
        parts = key.split("/")
        for cut in range(len(parts) - 1, -1, -1):
            node = self.arrays.get("/".join(parts[:cut]))
            if node is not None:
                coords = node.parse_chunk_name("/".join(parts[cut:]))
                return None if coords is None else (node, coords)
        return None

    def iter_nodes(self) -> Iterator[tuple[str, str]]:
        """(path, "group" | "array") for every node, parents before children."""
        nodes = [(p, "group") for p in self.groups] + [(p, "array") for p in self.arrays]
        yield from sorted(nodes, key=lambda n: (n[0].count("/") if n[0] else -1, n[0]))

    def chunk_count(self) -> int:
        return sum(len(a.chunks) for a in self.arrays.values())
