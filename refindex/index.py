"""The in-memory index: sources, the group/array hierarchy with Zarr v2 metadata, and per array
a columnar chunk table (NumPy arrays in chunk-grid C order, never a Python object per chunk)."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
from numpy.dtypes import StringDType

from refindex.grid import ChunkGrid

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


@dataclass(frozen=True)
class TablePart:
    """The decoded columns of one part of a lazily loaded chunk table: the chunks from
    ``part * part_size`` on, with ``inline`` keyed by flat position in the whole table."""

    source: np.ndarray
    offset: np.ndarray
    length: np.ndarray
    inline: dict[int, bytes] = field(default_factory=dict)


PartLoader = Callable[[int], TablePart]
"""Decodes part ``k`` of a chunk table (from a sidecar's text, a file, a URL)."""


class ChunkTable:
    """Chunk references of one array, columnar, in C order of the chunk grid.

    ``source[i]`` is a source id, ``ABSENT`` or ``INLINE``; ``offset`` and ``length`` are bytes
    (``length == WHOLE`` means the whole object). Inline chunk bytes live in ``inline``.

    A table made with :meth:`lazy` decodes its columns part by part, on first use: ``get``,
    ``set`` and ``columns`` decode only the parts they touch, ``grid`` and ``len`` none, and
    the full columns (``source``, ``offset``, ``length``, ``inline``, ``present()``, ...)
    all of them. ``parts_loaded`` counts the parts decoded so far. Thread-safe.
    """

    __slots__ = ("grid", "parts_loaded", "encoded", "_count", "_source", "_offset", "_length",
                 "_inline", "_part_size", "_loader", "_loaded", "_part_locks", "_lock")

    def __init__(self, grid: tuple[int, ...]) -> None:
        self._start(grid)
        self._source.fill(ABSENT)
        self._offset.fill(0)
        self._length.fill(0)

    @classmethod
    def lazy(cls, grid: tuple[int, ...], part_size: int, loader: PartLoader,
             encoded: list | None = None) -> ChunkTable:
        """A table whose parts of ``part_size`` chunks (the last one shorter) are decoded by
        ``loader(k)`` when first touched; nothing is decoded here. ``encoded``: the parts in
        the form a sidecar stores them, when that is where they come from (writers of the
        same part size then copy them instead of decoding and encoding again)."""
        table = cls.__new__(cls)
        table._start(grid, part_size, loader)
        table.encoded = encoded
        return table

    def _start(self, grid: tuple[int, ...], part_size: int = 0,
               loader: PartLoader | None = None) -> None:
        self.grid = tuple(int(n) for n in grid)
        self.encoded = None
        self._count = math.prod(self.grid)
        self._source = self._offset = self._length = None
        self._inline: dict[int, bytes] = {}
        self._lock = threading.Lock()
        self.parts_loaded = 0
        parts = -(-self._count // part_size) if loader is not None and self._count else 0
        self._part_size = part_size
        self._loader = loader if parts else None
        self._loaded = [False] * parts
        self._part_locks = [threading.Lock() for _ in range(parts)]
        if not parts:
            self._allocate()

    def _allocate(self) -> None:
        # np.empty: the pages of parts never decoded are never touched, so cost no memory.
        self._source = np.empty(self._count, dtype=np.int32)
        self._offset = np.empty(self._count, dtype=np.int64)
        self._length = np.empty(self._count, dtype=np.int64)

    def __len__(self) -> int:
        return self._count

    @property
    def part_size(self) -> int:
        """Chunks per part of a lazy table (0 for a table built in memory)."""
        return self._part_size if self._loaded else 0

    @property
    def part_count(self) -> int:
        """Parts a lazy table is decoded in (0 for a table built in memory)."""
        return len(self._loaded)

    @property
    def source(self) -> np.ndarray:
        self._load_all()
        return self._source

    @property
    def offset(self) -> np.ndarray:
        self._load_all()
        return self._offset

    @property
    def length(self) -> np.ndarray:
        self._load_all()
        return self._length

    @property
    def inline(self) -> dict[int, bytes]:
        self._load_all()
        return self._inline

    def columns(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Views of source, offset and length for chunks ``start:stop``, decoding only the
        parts they lie in."""
        start, stop = max(start, 0), min(stop, self._count)
        if self._loader is not None and start < stop:
            for part in range(start // self._part_size, (stop - 1) // self._part_size + 1):
                self._load_part(part)
        return self._source[start:stop], self._offset[start:stop], self._length[start:stop]

    def flat_index(self, coords: tuple[int, ...]) -> int:
        """Position of the chunk at grid ``coords`` in the columns; IndexError when outside."""
        # Plain arithmetic: a NumPy call per lookup costs more than the lookup itself.
        if len(coords) != len(self.grid):
            raise IndexError(f"chunk {coords} outside grid {self.grid}")
        flat = 0
        for c, n in zip(coords, self.grid, strict=True):
            if not 0 <= c < n:
                raise IndexError(f"chunk {coords} outside grid {self.grid}")
            flat = flat * n + c
        return int(flat)

    def coords(self, flat: int) -> tuple[int, ...]:
        """Grid coordinates of the chunk at position ``flat`` of the columns."""
        coords = []
        for n in reversed(self.grid):
            flat, c = divmod(flat, n)
            coords.append(c)
        return tuple(reversed(coords))

    def set(self, flat: int, source: int, offset: int, length: int) -> None:
        self._load_part_of(flat)
        self.encoded = None
        self._source[flat], self._offset[flat], self._length[flat] = source, offset, length

    def set_inline(self, flat: int, data: bytes) -> None:
        self._load_part_of(flat)
        self.encoded = None
        self._source[flat] = INLINE
        self._inline[flat] = bytes(data)

    def get(self, flat: int) -> ChunkRef:
        self._load_part_of(flat)
        source = int(self._source[flat])
        if source == INLINE:
            return ChunkRef(INLINE, data=self._inline[flat])
        return ChunkRef(source, int(self._offset[flat]), int(self._length[flat]))

    def put_block(self, start: tuple[int, ...], other: ChunkTable,
                  source_map: np.ndarray) -> None:
        """Copy ``other``'s chunks into the block of this grid that starts at chunk ``start``
        (``other``'s grid, with leading axes of one chunk where this grid has more axes),
        its source ids ``i >= 0`` becoming ``source_map[i]``. Columnar: one copy per column."""
        lead = len(self.grid) - len(other.grid)
        shape = (1,) * lead + other.grid
        block = tuple(slice(s, s + n) for s, n in zip(start, shape, strict=True))
        source = other.source.reshape(shape)
        mapped = np.where(source >= 0, source_map[np.maximum(source, 0)], source)
        self._load_all()
        self.encoded = None
        self._source.reshape(self.grid)[block] = mapped
        self._offset.reshape(self.grid)[block] = other.offset.reshape(shape)
        self._length.reshape(self.grid)[block] = other.length.reshape(shape)
        if other.inline:
            flats = np.fromiter(other.inline, dtype=np.int64, count=len(other.inline))
            coords = np.unravel_index(flats, shape)
            moved = np.ravel_multi_index(tuple(c + s for c, s in zip(coords, start,
                                                                     strict=True)), self.grid)
            with self._lock:
                self._inline.update(zip(moved.tolist(), other.inline.values(), strict=True))

    def present(self) -> np.ndarray:
        """Flat positions of the chunks that exist (referenced or inline)."""
        return np.flatnonzero(self.source != ABSENT)

    def referenced_bytes(self) -> int:
        """Bytes held by references to sources (whole-object references count as 0)."""
        mask = self.source >= 0
        return int(self.length[mask].clip(min=0).sum())

    def inline_bytes(self) -> int:
        return sum(len(b) for b in self.inline.values())

    def _load_part_of(self, flat: int) -> None:
        if self._loader is not None:
            # Floor division maps negative positions to the parts NumPy indexing would.
            self._load_part(flat // self._part_size)

    def _load_all(self) -> None:
        if self._loader is not None:
            for part in range(len(self._loaded)):
                self._load_part(part)

    def _load_part(self, part: int) -> None:
        if self._loaded[part]:
            return
        with self._part_locks[part]:
            loader = self._loader
            if self._loaded[part] or loader is None:
                return
            self._store_part(part, loader(part))

    def _store_part(self, part: int, decoded: TablePart) -> None:
        """Put a decoded part into the columns and count it (under the part's lock)."""
        start = part * self._part_size
        stop = min(start + self._part_size, self._count)
        if len(decoded.source) != stop - start:
            raise ValueError(f"part {part} has {len(decoded.source)} chunks, "
                             f"expected {stop - start}")
        with self._lock:
            if self._source is None:
                self._allocate()
        self._source[start:stop] = decoded.source
        self._offset[start:stop] = decoded.offset
        self._length[start:stop] = decoded.length
        with self._lock:
            self._inline.update(decoded.inline)
            self._loaded[part] = True
            self.parts_loaded += 1
            if self.parts_loaded == len(self._loaded):
                self._loader = None  # frees the encoded text it held

    def __getstate__(self) -> dict:
        state = {"grid": self.grid, "inline": dict(self._inline)}
        loader = self._loader
        if loader is None:
            return {**state, "columns": (self._source, self._offset, self._length)}
        # Still lazy: ship the loader and the parts decoded so far, not undecoded garbage.
        decoded = {}
        for part, done in enumerate(self._loaded):
            if done:
                start = part * self._part_size
                stop = min(start + self._part_size, self._count)
                decoded[part] = (self._source[start:stop], self._offset[start:stop],
                                 self._length[start:stop])
        return {**state, "part_size": self._part_size, "loader": loader, "decoded": decoded}

    def __setstate__(self, state: dict) -> None:
        if "columns" in state:
            self._start(state["grid"])
            self._source, self._offset, self._length = state["columns"]
        else:
            self._start(state["grid"], state["part_size"], state["loader"])
            for part, (source, offset, length) in state["decoded"].items():
                self._store_part(part, TablePart(source, offset, length))
        self._inline.update(state["inline"])


@dataclass
class ArrayNode:
    """One Zarr v2 array: its ``.zarray`` metadata, ``.zattrs`` and chunk table.

    ``grid`` is set for arrays whose chunks are not all of one shape (combined from members
    of uneven lengths, see refindex.grid): the chunk table follows it, ``zarray["chunks"]``
    is then the chunk shape readers of plain Zarr are served (refindex.store re-tiles)."""

    path: str
    zarray: dict
    attrs: dict
    chunks: ChunkTable
    attr_dtypes: dict[str, str] = field(default_factory=dict)
    """NumPy dtypes of numeric attributes that JSON does not carry (e.g. float32)."""
    grid: ChunkGrid | None = None

    @property
    def irregular(self) -> bool:
        """Whether the chunks differ in shape (a rectilinear ``grid``)."""
        return self.grid is not None

    @property
    def chunk_grid(self) -> ChunkGrid:
        """Where each chunk lies: ``grid``, or the regular grid ``zarray`` describes."""
        if self.grid is not None:
            return self.grid
        return ChunkGrid.regular(tuple(self.zarray["shape"]), tuple(self.zarray["chunks"]))

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
        if not all(p.isascii() and p.isdigit() for p in parts):  # not "²"
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
    combined: dict = field(default_factory=dict)
    """How the index was combined from members (refindex.combine): the dimensions
    concatenated or added, their lengths and the number of members; empty otherwise."""
    left_out: dict[str, str] = field(default_factory=dict)
    """Arrays of the container the scan could not index exactly and left out: path (as in
    ``arrays``) -> why. They are not in ``arrays``; reading one is an error naming it."""
    group_attr_dtypes: dict[str, dict[str, str]] = field(default_factory=dict)
    """Per group path, the NumPy dtypes of attributes JSON does not carry (as
    ``ArrayNode.attr_dtypes``)."""

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
