"""Sidecar files: load an :class:`~refindex.index.Index` from one, write one from an Index.

The format is detected from the content, never from the file name: the native format (one
file, or a directory with ``index.json``), kerchunk reference JSON, or a kerchunk parquet
reference directory (``.zmetadata``).
"""

from __future__ import annotations

import os
from pathlib import Path

import ujson

from refindex.errors import SidecarError, SourceNotFoundError
from refindex.index import Index
from refindex.sidecar.chunk_parts import PART_SIZE
from refindex.sidecar.kerchunk_json import from_kerchunk, is_kerchunk, to_kerchunk
from refindex.sidecar.kerchunk_parquet import write_kerchunk_parquet
from refindex.sidecar.location import is_local, is_local_directory, member, sidecar_bytes
from refindex.sidecar.native import (
    INDEX_FILE,
    LAYOUTS,
    from_native,
    is_native,
    write_native,
)
from refindex.sidecar.parquet import METADATA_FILE, from_parquet_refs, is_parquet_refs

__all__ = ["FORMATS", "LAYOUTS", "load_index", "parse_index", "write_index", "is_local",
           "sidecar_bytes"]

FORMATS = ("native", "kerchunk", "kerchunk-parquet")


def parse_index(data: bytes | str | dict, name: str | None = None, options=None) -> Index:
    """Parse sidecar content (bytes, text or an already decoded document). ``name`` is where
    it came from: the files a directory sidecar keeps next to it are read relative to it
    (through the I/O engine with ``options`` when it is a URL)."""
    located = name is not None
    name = name or "<sidecar>"
    if isinstance(data, dict):
        doc = data
    else:
        try:
            doc = ujson.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SidecarError(f"{name}: not valid JSON ({exc}); is the file truncated?") from None
    if is_native(doc):
        return from_native(doc, name, options, located)
    if is_parquet_refs(doc):
        if not located:
            raise SidecarError(f"{name}: kerchunk parquet references are read from their "
                               "directory, not from a document")
        return from_parquet_refs(doc, name, options)
    if is_kerchunk(doc):
        return from_kerchunk(doc, name)
    raise SidecarError(f"{name}: not a sidecar refindex knows (no 'refindex_sidecar' version, "
                       "no kerchunk 'refs', no Zarr metadata keys)")


def load_index(location: str | os.PathLike | dict, options=None) -> Index:
    """Load the Index a sidecar describes, from a local path, a URL or a decoded document.

    A directory (a local one, a URL ending in ``/``, or a URL with nothing at it) is read
    through its ``index.json`` (native) or ``.zmetadata`` (kerchunk parquet)."""
    if isinstance(location, dict):
        return parse_index(location)
    name = os.fspath(location)
    if is_local_directory(name) or (not is_local(name) and name.endswith("/")):
        return _load_directory(name, options)
    try:
        data = sidecar_bytes(name, options)
    except SourceNotFoundError:
        if is_local(name):
            raise
        return _load_directory(name, options)
    return parse_index(data, name, options)


def _load_directory(directory: str, options) -> Index:
    for file in (INDEX_FILE, METADATA_FILE):
        location = member(directory, file)
        try:
            data = sidecar_bytes(location, options)
        except SourceNotFoundError:
            continue
        return parse_index(data, location, options)
    if is_local_directory(directory) and os.path.isfile(os.path.join(directory,
                                                                      "collection.json")):
        raise SidecarError(f"{directory}: a collection whose members are not combined into one "
                           f"dataset yet: run 'refindex combine {directory} -o OUT' (or scan "
                           "it again with --combine), or open one member's sidecar")
    raise SourceNotFoundError(f"{directory}: no sidecar there (neither a file, nor a directory "
                              f"with {INDEX_FILE} or {METADATA_FILE})")


def write_index(index: Index, path: str | os.PathLike, format: str = "native",
                layout: str = "auto", part_size: int = PART_SIZE) -> int:
    """Write ``index`` to ``path``; returns the bytes written.

    ``format`` is ``"native"`` (docs/format.md; ``layout`` ``"file"``, ``"directory"`` or
    ``"auto"``: a directory above ``refindex.sidecar.native.DIRECTORY_ABOVE`` chunks, with
    chunk tables in parts of ``part_size`` chunks) or ``"kerchunk"`` (reference JSON version
    1, always one file) or ``"kerchunk-parquet"`` (a directory of parquet record files,
    ``refindex.sidecar.kerchunk_parquet``)."""
    if format == "native":
        return write_native(index, path, layout, part_size)
    if format == "kerchunk-parquet":
        if layout not in ("auto", "directory"):
            raise ValueError(f"kerchunk parquet references are a directory: layout {layout!r} "
                             "is not possible, only 'directory' (or 'auto')")
        return write_kerchunk_parquet(index, path)
    if format != "kerchunk":
        raise ValueError(f"format must be one of {FORMATS}, not {format!r}")
    if layout not in ("auto", "file"):
        raise ValueError(f"kerchunk reference JSON is one file: layout {layout!r} is not "
                         "possible, only 'file' (or 'auto')")
    data = ujson.dumps(to_kerchunk(index), escape_forward_slashes=False).encode()
    Path(path).write_bytes(data)
    return len(data)
