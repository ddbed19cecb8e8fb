"""The native sidecar format, versions 1 and 2 (docs/format.md, "Native format").

JSON whose hierarchy, metadata and sources are plain maps, and whose chunk tables are compact
columns (``chunk_parts``) cut into parts of a fixed number of chunks: in one file, or, for
very large indexes, a directory with ``index.json`` and one file per part. Reading parses the
hierarchy only; each part is decoded (and, in a directory, fetched) when first touched.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import ujson

from refindex.errors import SidecarError, SourceNotFoundError
from refindex.grid import ChunkGrid
from refindex.index import INLINE, ArrayNode, ChunkRef, ChunkTable, Index, TablePart
from refindex.sidecar.chunk_parts import COMPRESSION, PART_SIZE, decode_part, encode_part
from refindex.sidecar.kerchunk_json import attr_dtype_map
from refindex.sidecar.location import sibling, sidecar_bytes
from refindex.sidecar.source_table import PACK_ABOVE, decode_sources, encode_sources
from refindex.sidecar.zarray_check import check_zarray

MARKER = "refindex_sidecar"
# 1.1 adds "combined" and 1.2 "left_out" (both ignorable); 2.0 adds arrays with irregular
# chunks ("chunk_grid"), which a 1.x reader would read wrongly, and packed sources
# (refindex.sidecar.source_table), so sidecars holding either say 2.0 and 1.x readers refuse
# them.
VERSION = (2, 0)
READS = (1, 2)  # the major versions this reader reads
INDEX_FILE = "index.json"
PARTS_FOLDER = "chunks"
DIRECTORY_ABOVE = 4 * PART_SIZE  # layout "auto" writes a directory above this many chunks
LAYOUTS = ("auto", "file", "directory")
_STEM = re.compile(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*")  # no dots: never leaves the directory

StorePart = Callable[[str, dict], None]


def is_native(doc: object) -> bool:
    """Whether a parsed JSON document is a native sidecar (of any version)."""
    return isinstance(doc, dict) and MARKER in doc


def choose_layout(index: Index, layout: str) -> str:
    """``"file"`` or ``"directory"``; ``"auto"`` is a directory above ``DIRECTORY_ABOVE``
    chunks in total."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, not {layout!r}")
    if layout == "auto":
        return "directory" if index.chunk_count() > DIRECTORY_ABOVE else "file"
    return layout


def write_native(index: Index, path: str | os.PathLike, layout: str = "auto",
                 part_size: int = PART_SIZE) -> int:
    """Write ``index`` as a native sidecar at ``path`` (a file, or a directory for the
    directory layout); returns the bytes written."""
    path = Path(path)
    if choose_layout(index, layout) == "file":
        if path.is_dir():
            raise SidecarError(f"{path}: is a directory; a one-file sidecar needs a file name")
        data = encode_native(index, part_size)
        path.write_bytes(data)
        return len(data)
    if path.is_file():
        raise SidecarError(f"{path}: is a file; a directory sidecar needs a directory there")
    (path / PARTS_FOLDER).mkdir(parents=True, exist_ok=True)
    written = 0

    def store(name: str, document: dict) -> None:
        nonlocal written
        data = _dumps(document)
        path.joinpath(*name.split("/")).write_bytes(data)
        written += len(data)

    # Parts are written as they are encoded: the whole sidecar never sits in memory.
    store(INDEX_FILE, to_native(index, part_size, store))
    return written


def encode_native(index: Index, part_size: int = PART_SIZE) -> bytes:
    """The bytes of ``index`` as a one-file native sidecar."""
    return _dumps(to_native(index, part_size))


def to_native(index: Index, part_size: int = PART_SIZE,
              store_part: StorePart | None = None) -> dict:
    """The native document of ``index``: chunk-table parts inside it, or, when
    ``store_part`` is given, handed to ``store_part(relative name, part document)`` and
    named from the document (the directory layout)."""
    arrays = {}
    stems = _stems(index.arrays) if store_part else {}
    version = _version_text(index)
    for path, node in index.arrays.items():
        entry: dict = {"zarray": node.zarray, "attrs": node.attrs}
        if node.attr_dtypes:
            entry["attr_dtypes"] = node.attr_dtypes
        if node.grid is not None:
            entry["chunk_grid"] = node.grid.to_json()
        chunks: dict = {"part_size": part_size, "compression": COMPRESSION}
        parts = _encoded_parts(node.chunks, part_size)
        if store_part is None:
            chunks["parts"] = list(parts)
        else:
            chunks["part_files"] = stems[path]
            for number, part in enumerate(parts):
                store_part(f"{stems[path]}.{number}.json",
                           {"refindex_part": version, "array": path, "part": number, **part})
        entry["chunks"] = chunks
        arrays[path] = entry
    document = {
        MARKER: version,
        "generator": index.generator,
        "sources": encode_sources(index.sources),
        "groups": index.groups,
        "arrays": arrays,
        "extra": {key: _extra_value(ref) for key, ref in index.extra.items()},
    }
    if index.combined:
        document["combined"] = index.combined
    if index.left_out:
        document["left_out"] = index.left_out
    if index.group_attr_dtypes:
        document["group_attr_dtypes"] = index.group_attr_dtypes
    return document


def _encoded_parts(table: ChunkTable, part_size: int) -> Iterator[dict]:
    if table.encoded is not None and table.part_size == part_size:
        yield from table.encoded  # as they were encoded (combine streams its parts)
        return
    inline = table.inline
    flats = sorted(inline)
    for start in range(0, len(table), part_size):
        stop = min(start + part_size, len(table))
        source, offset, length = table.columns(start, stop)
        held = flats[bisect.bisect_left(flats, start):bisect.bisect_left(flats, stop)]
        yield encode_part(source, offset, length, {flat: inline[flat] for flat in held})


def _stems(arrays: dict[str, ArrayNode]) -> dict[str, str]:
    """Per array path, the start of its part files' names: readable, and unique and safe
    whatever the path (a slug of it and a hash of it)."""
    stems = {}
    for path in arrays:
        slug = re.sub(r"[^A-Za-z0-9_-]+", "_", path).strip("_")[:40] or "root"
        digest = hashlib.sha1(path.encode()).hexdigest()[:16]
        stems[path] = f"{PARTS_FOLDER}/{slug}-{digest}"
    return stems


def _extra_value(ref: ChunkRef) -> object:
    if ref.source == INLINE:
        return "base64:" + base64.b64encode(ref.data).decode()
    return [ref.source, ref.offset, ref.length]


def _version_text(index: Index) -> str:
    """The oldest version that says all of ``index`` (so older readers read what they can):
    2.0 with irregular chunk grids or packed sources, 1.2 with ``left_out`` or
    ``group_attr_dtypes``, 1.1 with ``combined``, else 1.0."""
    if len(index.sources) > PACK_ABOVE or any(node.grid is not None
                                              for node in index.arrays.values()):
        return f"{VERSION[0]}.{VERSION[1]}"
    if index.left_out or index.group_attr_dtypes:
        return "1.2"
    return "1.1" if index.combined else "1.0"


def _dumps(document: dict) -> bytes:
    try:
        text = ujson.dumps(document, escape_forward_slashes=False, ensure_ascii=False)
    except UnicodeDecodeError as exc:  # bytes (an attribute h5py could not decode)
        shown = exc.object[max(0, exc.start - 40):exc.end + 10]
        raise SidecarError(f"cannot write the sidecar: {shown!r} is not UTF-8 text") from None
    try:
        return text.encode()
    except UnicodeEncodeError as exc:  # a name or attribute that is not text (h5py surrogates)
        shown = text[max(0, exc.start - 40):exc.end + 10]
        raise SidecarError(f"cannot write the sidecar: {shown!r} is not UTF-8 text") from None


def from_native(doc: dict, name: str = "<sidecar>", options=None,
                located: bool = True) -> Index:
    """The Index of a native document; ``name`` names it in errors and, when ``located``, is
    its location (parts of a directory sidecar are read next to it, with the I/O engine's
    ``options``). Chunk tables are lazy: nothing of them is decoded here."""
    check_version(doc.get(MARKER), name)
    index = Index(sources=decode_sources(doc.get("sources", []), name),
                  groups=_groups(_map(doc, "groups", name), name),
                  generator=_map(doc, "generator", name),
                  combined=_map(doc, "combined", name),
                  left_out=_left_out(_map(doc, "left_out", name), name),
                  group_attr_dtypes=_group_attr_dtypes(_map(doc, "group_attr_dtypes", name),
                                                       name))
    for path, entry in _map(doc, "arrays", name).items():
        index.arrays[path] = _array(path, entry, len(index.sources), name,
                                    name if located else None, options)
    for key, value in _map(doc, "extra", name).items():
        index.extra[key] = _extra_ref(key, value, len(index.sources), name)
    return index


def _left_out(entries: dict, name: str) -> dict[str, str]:
    if not all(isinstance(reason, str) for reason in entries.values()):
        raise SidecarError(f"{name}: 'left_out' must map array paths to reasons (text)")
    return dict(entries)


def check_version(version: object, name: str) -> None:
    """Refuse a document of another major version (minor versions only add what older
    readers may ignore)."""
    match = re.fullmatch(r"(\d+)\.(\d+)", version) if isinstance(version, str) else None
    if match is None:
        raise SidecarError(f"{name}: {MARKER!r} must be a version \"MAJOR.MINOR\", got "
                           f"{version!r}")
    if int(match[1]) not in READS:
        newer = int(match[1]) > max(READS)
        known = " and ".join(f"{major}.x" for major in READS)
        raise SidecarError(
            f"{name}: native sidecar version {version} is not supported: this refindex reads "
            f"versions {known}" + ("; upgrade refindex to read it" if newer else ""))


def _map(doc: dict, key: str, name: str) -> dict:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise SidecarError(f"{name}: {key!r} must be a map, got {type(value).__name__}")
    return value


def _groups(groups: dict, name: str) -> dict[str, dict]:
    for path, attrs in groups.items():
        if not isinstance(attrs, dict):
            raise SidecarError(f"{name}: group {path!r}: attributes must be a map")
    return groups


def _array(path: str, entry: object, sources: int, name: str, location: str | None,
           options) -> ArrayNode:
    where = f"{name}: array {path!r}"
    if not isinstance(entry, dict) or not isinstance(entry.get("chunks"), dict):
        raise SidecarError(f"{where}: expected a map with 'zarray', 'attrs' and 'chunks'")
    zarray, attrs = entry.get("zarray"), entry.get("attrs", {})
    check_zarray(zarray, f"{path}/.zarray", name)
    if not isinstance(attrs, dict):
        raise SidecarError(f"{where}: 'attrs' must be a map")
    chunk_grid = _chunk_grid(entry, zarray, where)
    grid = chunk_grid.counts if chunk_grid is not None else tuple(
        -(-s // c) for s, c in zip(zarray["shape"], zarray["chunks"], strict=True))
    table = _lazy_table(path, grid, entry["chunks"], sources, name, location, options)
    return ArrayNode(path, zarray, attrs, table, _attr_dtypes(entry, where), chunk_grid)


def _chunk_grid(entry: dict, zarray: dict, where: str) -> ChunkGrid | None:
    """The irregular chunk grid of an array entry (``chunk_grid``: per axis, runs of
    ``[count, size, stored]``), checked against its shape; None for a regular array."""
    runs = entry.get("chunk_grid")
    if runs is None:
        return None
    problem = _runs_problem(runs, len(zarray["shape"]))
    if problem is None:
        grid = ChunkGrid.from_json(runs)
        if list(grid.shape) != list(zarray["shape"]):
            problem = f"covers shape {list(grid.shape)}, the array is {zarray['shape']}"
    if problem is not None:
        raise SidecarError(f"{where}: 'chunk_grid' {problem}")
    return grid


def _runs_problem(runs: object, ndim: int) -> str | None:
    if not isinstance(runs, list) or len(runs) != ndim:
        return f"must list the chunks of each of the array's {ndim} axes"
    for axis in runs:
        if not isinstance(axis, list):
            return "must be a list of runs [count, size, stored] per axis"
        for run in axis:
            if (not isinstance(run, list) or len(run) != 3
                    or not all(isinstance(v, int) and not isinstance(v, bool) for v in run)
                    or run[0] < 1 or run[1] < 1 or run[2] < run[1]):
                return (f"run {str(run)[:40]} must be [count >= 1, size >= 1, stored >= "
                        "size] integers")
    return None


def _attr_dtypes(entry: dict, where: str) -> dict[str, str]:
    return attr_dtype_map(entry.get("attr_dtypes", {}), f"{where}: 'attr_dtypes'")


def _group_attr_dtypes(groups: dict, name: str) -> dict[str, dict[str, str]]:
    return {path: attr_dtype_map(dtypes, f"{name}: 'group_attr_dtypes' of group {path!r}")
            for path, dtypes in groups.items()}



def _lazy_table(path: str, grid: tuple[int, ...], chunks: dict, sources: int, name: str,
                location: str | None, options) -> ChunkTable:
    where = f"{name}: array {path!r}"
    part_size = chunks.get("part_size")
    if not isinstance(part_size, int) or isinstance(part_size, bool) or part_size <= 0:
        raise SidecarError(f"{where}: 'part_size' must be a positive integer, got {part_size!r}")
    if chunks.get("compression") != COMPRESSION:
        raise SidecarError(f"{where}: unknown chunk-table compression "
                           f"{chunks.get('compression')!r} (version 1 knows {COMPRESSION!r})")
    count = int(np.prod(grid, dtype=np.int64))
    decoder = _PartDecoder(name, path, count, part_size, sources)
    expected = -(-count // part_size)
    if "parts" in chunks:
        parts = chunks["parts"]
        if not isinstance(parts, list) or len(parts) != expected:
            found = len(parts) if isinstance(parts, list) else type(parts).__name__
            raise SidecarError(f"{where}: expected {expected} chunk-table parts of "
                               f"{part_size} chunks, found {found}")
        return ChunkTable.lazy(grid, part_size, _EmbeddedParts(list(parts), decoder))
    stem = chunks.get("part_files")
    if not isinstance(stem, str) or not _STEM.fullmatch(stem):
        raise SidecarError(f"{where}: needs 'parts', or 'part_files' naming files inside "
                           f"the sidecar's directory, got {stem!r}")
    if location is None:
        raise SidecarError(f"{where}: its parts are files next to the sidecar's index.json: "
                           "open the sidecar by its directory or index.json, not as a document")
    return ChunkTable.lazy(grid, part_size, _PartFiles(location, stem, decoder, options))


@dataclass(frozen=True)
class _PartDecoder:
    """Decodes part ``k`` of one array's chunk table, knowing where it starts and ends."""

    sidecar: str
    array: str
    count: int
    part_size: int
    sources: int

    def __call__(self, part: object, number: int, file: str | None = None) -> TablePart:
        start = number * self.part_size
        where = f"{file or self.sidecar}: array {self.array!r}, part {number}"
        return decode_part(part, start, min(self.part_size, self.count - start), self.sources,
                           where)


@dataclass
class _EmbeddedParts:
    """The parts of a one-file sidecar, as parsed JSON; each is dropped once decoded."""

    parts: list[dict | None]
    decode: _PartDecoder

    def __call__(self, number: int) -> TablePart:
        decoded = self.decode(self.parts[number], number)
        self.parts[number] = None
        return decoded


@dataclass(frozen=True)
class _PartFiles:
    """The parts of a directory sidecar: ``<stem>.<k>.json`` next to its ``index.json``,
    read (from disk or through the I/O engine) when first touched."""

    index_location: str
    stem: str
    decode: _PartDecoder
    options: object = None

    def __call__(self, number: int) -> TablePart:
        file = sibling(self.index_location, f"{self.stem}.{number}.json")
        try:
            data = sidecar_bytes(file, self.options)
        except SourceNotFoundError:
            raise SidecarError(f"{file}: part {number} of array {self.decode.array!r} is "
                               "missing: the directory sidecar is incomplete") from None
        try:
            part = ujson.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SidecarError(f"{file}: not valid JSON ({exc}); is the file truncated?"
                               ) from None
        if (not isinstance(part, dict) or part.get("array") != self.decode.array
                or part.get("part") != number):
            raise SidecarError(f"{file}: is not part {number} of array {self.decode.array!r}")
        check_version(part.get("refindex_part"), file)
        return self.decode(part, number, file)


def _extra_ref(key: str, value: object, sources: int, name: str) -> ChunkRef:
    if isinstance(value, str) and value.startswith("base64:"):
        try:
            return ChunkRef(INLINE, data=base64.b64decode(value[7:], validate=True))
        except (binascii.Error, ValueError):
            raise SidecarError(f"{name}: extra {key!r}: invalid base64") from None
    if (isinstance(value, list) and len(value) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            and 0 <= value[0] < sources and value[1] >= 0 and value[2] >= -1
            and (value[2] != -1 or value[1] == 0)):
        return ChunkRef(*value)
    raise SidecarError(f"{name}: extra {key!r}: expected \"base64:...\" or [source id, offset, "
                       f"length], got {str(value)[:80]!r}")
