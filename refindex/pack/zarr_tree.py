"""Read a Zarr directory store (v2 or v3) from disk: its metadata documents, and per array the
files that hold its data (chunk files, or shard files of a sharded v3 array), as NumPy columns
in C order of the grid of those files; the files that are no part of the hierarchy beside.

Every array's metadata is read as the archive scanner reads it (``scan.zarrstore``'s
``ArraySpec``: its key encoding and the grid of its stored objects), so that this walk and the
scan that indexes the packed parts agree on which file is which chunk. One ``os.scandir`` pass
and one ``stat`` per file; chunk files cost three integers each (flat position, size,
modification time), never a Python object that lives on.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numpy.dtypes import StringDType

from refindex.errors import ContainerError, SidecarError
from refindex.scan.zarrstore.arrays import ArraySpec, v2_array
from refindex.scan.zarrstore.v3 import v3_array
from refindex.sidecar.kerchunk_json import check_zarray

ARRAY_METADATA = ".zarray"
GROUP_METADATA = ".zgroup"
ATTRIBUTES = ".zattrs"
CONSOLIDATED = ".zmetadata"
V3_METADATA = "zarr.json"
# The files that are a node's metadata, by the kind of node.
_V2_GROUP_FILES = (GROUP_METADATA, ATTRIBUTES, CONSOLIDATED)
_V2_ARRAY_FILES = (ARRAY_METADATA, ATTRIBUTES)
_V3_FILES = (V3_METADATA,)


class FileEntry(NamedTuple):
    """One file of the store: its Zarr key (``/``-separated, relative to the store), size in
    bytes and modification time in nanoseconds."""

    key: str
    size: int
    mtime_ns: int


@dataclass
class ArrayFiles:
    """One array of the store: its metadata as the scan reads it (``spec``, whose ``keys`` and
    ``grid`` name and place the stored objects: chunks, or shards), the attributes its own
    metadata gives, and the stored objects that exist, sorted by ``flat`` position in the grid
    (C order)."""

    spec: ArraySpec
    attributes: dict
    flat: np.ndarray
    size: np.ndarray
    mtime_ns: np.ndarray

    def __len__(self) -> int:
        return len(self.flat)

    def keys(self, start: int, stop: int) -> list[str]:
        """Store keys of stored objects ``start`` to ``stop``, built with vectorised string
        operations (a Python loop per chunk costs seconds per million chunks)."""
        spec, encoding = self.spec, self.spec.keys
        base = f"{spec.path}/" if spec.path else ""
        if not spec.grid:
            return [base + (encoding.prefix or "0")] * (stop - start)
        lead = base + (encoding.prefix + encoding.separator if encoding.prefix else "")
        keys = np.full(stop - start, lead, dtype=StringDType())
        for axis, coords in enumerate(np.unravel_index(self.flat[start:stop], spec.grid)):
            if axis:
                keys = np.strings.add(keys, encoding.separator)
            keys = np.strings.add(keys, coords.astype(StringDType()))
        return keys.tolist()


@dataclass
class StoreTree:
    """A Zarr directory store: arrays (by path, sorted), metadata files (parents first) and
    other files that are no part of the hierarchy."""

    root: Path
    arrays: dict[str, ArrayFiles] = field(default_factory=dict)
    metadata: list[FileEntry] = field(default_factory=list)
    others: list[FileEntry] = field(default_factory=list)

    def chunk_count(self) -> int:
        """Stored objects of all arrays: chunk files, and shard files of sharded arrays."""
        return sum(len(array) for array in self.arrays.values())


def read_store(root: str | os.PathLike) -> StoreTree:
    """The arrays and files of the Zarr v2 or v3 directory store at ``root``.

    A directory that is no Zarr store, or metadata that cannot be read, is a ContainerError
    naming the file; an array that has no exact Zarr v2 equivalent (see ``scan.zarrstore``)
    an UnsupportedFeatureError naming it."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise ContainerError(f"{root}: not a directory; refindex pack takes a Zarr directory "
                             "store")
    tree = StoreTree(root)
    if not _Walker(tree).visit("", root):
        raise ContainerError(f"{root}: not a Zarr v2 store (no {GROUP_METADATA} or "
                             f"{ARRAY_METADATA} at its top) nor a Zarr v3 one (no "
                             f"{V3_METADATA})")
    tree.metadata.sort(key=lambda entry: (entry.key.count("/"), entry.key))
    tree.arrays = dict(sorted(tree.arrays.items()))
    return tree


class _Walker:
    def __init__(self, tree: StoreTree) -> None:
        self.tree = tree
        self.where = str(tree.root)

    def visit(self, prefix: str, directory: Path) -> bool:
        """Record the files below ``directory``; whether it is a Zarr node (group or array).

        Neither Zarr version has implicit groups: a folder without metadata holds no Zarr
        data, and a folder's zarr.json wins over v2 documents beside it."""
        entries = _scan(directory)
        if V3_METADATA in entries:
            self._v3_node(prefix, directory, entries)
        elif ARRAY_METADATA in entries:
            self._v2_array(prefix, directory, entries)
        elif GROUP_METADATA in entries:
            self._v2_group(prefix, directory, entries)
        else:
            self._others(prefix, directory, entries)
            return False
        return True

    def _v3_node(self, prefix: str, directory: Path, entries: dict[str, os.DirEntry]) -> None:
        doc = self._json(prefix, V3_METADATA, entries)
        key = _key(prefix, V3_METADATA)
        if not isinstance(doc, dict) or doc.get("zarr_format") != 3:
            raise ContainerError(f"{self.where}: {key}: not Zarr v3 metadata (a JSON object "
                                 "with zarr_format 3)")
        kind = doc.get("node_type")
        if kind == "group":
            self._group(prefix, directory, entries, _V3_FILES)
        elif kind == "array":
            attributes = doc.get("attributes") or {}
            self._array(prefix, directory, entries, v3_array(doc, prefix, self.where),
                        attributes, _V3_FILES)
        else:
            raise ContainerError(f"{self.where}: {key}: node_type {kind!r} is neither 'group' "
                                 "nor 'array'")

    def _v2_group(self, prefix: str, directory: Path, entries: dict[str, os.DirEntry]) -> None:
        meta = self._json(prefix, GROUP_METADATA, entries)
        if not isinstance(meta, dict) or meta.get("zarr_format") != 2:
            raise ContainerError(f"{self.where}: {_key(prefix, GROUP_METADATA)}: not Zarr v2 "
                                 "group metadata")
        self._attributes(prefix, entries)  # checked now rather than after packing
        self._group(prefix, directory, entries, _V2_GROUP_FILES)

    def _v2_array(self, prefix: str, directory: Path, entries: dict[str, os.DirEntry]) -> None:
        meta = self._json(prefix, ARRAY_METADATA, entries)
        try:
            check_zarray(meta, _key(prefix, ARRAY_METADATA), self.where)
        except SidecarError as error:
            raise ContainerError(str(error)) from None
        attributes = self._attributes(prefix, entries)
        self._array(prefix, directory, entries, v2_array(meta, attributes, prefix, self.where),
                    attributes, _V2_ARRAY_FILES)

    def _group(self, prefix: str, directory: Path, entries: dict[str, os.DirEntry],
               metadata: tuple[str, ...]) -> None:
        for name, entry in entries.items():
            key = _key(prefix, name)
            if entry.is_dir():
                self.visit(key, directory / name)
            elif name in metadata:
                self.tree.metadata.append(_file(key, entry))
            else:
                self.tree.others.append(_file(key, entry))

    def _array(self, prefix: str, directory: Path, entries: dict[str, os.DirEntry],
               spec: ArraySpec, attributes: dict, metadata: tuple[str, ...]) -> None:
        coords: list[tuple[int, ...]] = []
        sizes: list[int] = []
        mtimes: list[int] = []
        for name, entry in _files_below(directory, entries):
            key = _key(prefix, name)
            if name in metadata:
                self.tree.metadata.append(_file(key, entry))
                continue
            found = spec.keys.coords(name)
            stat = entry.stat()
            if found is None or not _in_grid(found, spec.grid):
                self.tree.others.append(FileEntry(key, stat.st_size, stat.st_mtime_ns))
                continue
            coords.append(found)
            sizes.append(stat.st_size)
            mtimes.append(stat.st_mtime_ns)
        self.tree.arrays[prefix] = _array_files(spec, attributes, coords, sizes, mtimes)

    def _others(self, prefix: str, directory: Path, entries: dict[str, os.DirEntry]) -> None:
        for name, entry in _files_below(directory, entries):
            self.tree.others.append(_file(_key(prefix, name), entry))

    def _attributes(self, prefix: str, entries: dict[str, os.DirEntry]) -> dict:
        if ATTRIBUTES not in entries:
            return {}
        attrs = self._json(prefix, ATTRIBUTES, entries)
        if not isinstance(attrs, dict):
            raise ContainerError(f"{self.where}: {_key(prefix, ATTRIBUTES)}: attributes must "
                                 "be a JSON object")
        return attrs

    def _json(self, prefix: str, name: str, entries: dict[str, os.DirEntry]) -> object:
        try:
            with open(entries[name].path, "rb") as file:
                return json.load(file)
        except (OSError, ValueError) as error:
            raise ContainerError(f"{self.where}: {_key(prefix, name)}: cannot be read as JSON "
                                 f"({error})") from None


def _array_files(spec: ArraySpec, attributes: dict, coords: list[tuple[int, ...]],
                 sizes: list[int], mtimes: list[int]) -> ArrayFiles:
    if coords and spec.grid:
        flat = np.ravel_multi_index(np.array(coords, dtype=np.int64).T, spec.grid)
        flat = flat.astype(np.int64)
    else:
        flat = np.zeros(len(coords), dtype=np.int64)  # a 0-d array's one chunk
    order = np.argsort(flat, kind="stable")
    return ArrayFiles(spec, attributes, flat[order], np.array(sizes, dtype=np.int64)[order],
                      np.array(mtimes, dtype=np.int64)[order])


def _scan(directory: Path) -> dict[str, os.DirEntry]:
    with os.scandir(directory) as found:
        return {entry.name: entry for entry in sorted(found, key=lambda e: e.name)}


def _files_below(directory: Path, entries: dict[str, os.DirEntry]):
    """``(relative /-separated name, entry)`` of every file under ``directory``."""
    pending = [("", entries)]
    while pending:
        prefix, current = pending.pop()
        for name, entry in current.items():
            relative = f"{prefix}{name}"
            if entry.is_dir():
                pending.append((relative + "/", _scan(Path(entry.path))))
            else:
                yield relative, entry


def _in_grid(coords: tuple[int, ...], grid: tuple[int, ...]) -> bool:
    return all(c < n for c, n in zip(coords, grid, strict=True))


def _file(key: str, entry: os.DirEntry) -> FileEntry:
    stat = entry.stat()
    return FileEntry(key, stat.st_size, stat.st_mtime_ns)


def _key(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name
