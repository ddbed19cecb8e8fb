"""Sidecar files: load an :class:`~refindex.index.Index` from one, write one from an Index.

The format is detected from the content, never from the file name.
"""

from __future__ import annotations

import os
from pathlib import Path

import ujson

from refindex.errors import SidecarError, SourceNotFoundError
from refindex.index import Index
from refindex.sidecar.kerchunk_json import from_kerchunk, is_kerchunk, to_kerchunk

__all__ = ["load_index", "parse_index", "write_index", "is_local", "sidecar_bytes"]


def is_local(location: str | os.PathLike) -> bool:
    """Whether ``location`` names a local file (a path or a ``file://`` URL)."""
    text = os.fspath(location)
    return "://" not in text or text.startswith("file://")


def sidecar_bytes(location: str | os.PathLike, options=None) -> bytes:
    """The raw bytes of a sidecar, from a local path or any URL the I/O engine reads."""
    text = os.fspath(location)
    if is_local(text):
        path = Path(text.removeprefix("file://"))
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise SourceNotFoundError(f"{path}: sidecar not found") from None
        except IsADirectoryError:
            raise SidecarError(f"{path}: is a directory, not a sidecar file") from None
    from refindex.io import RangeRequest, ReadEngine

    engine = ReadEngine(options)
    return engine.read_sync([RangeRequest(text, 0, -1)])[0]


def parse_index(data: bytes | str | dict, name: str = "<sidecar>") -> Index:
    """Parse sidecar content (bytes, text or an already decoded document)."""
    if isinstance(data, dict):
        doc = data
    else:
        try:
            doc = ujson.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SidecarError(f"{name}: not valid JSON ({exc}); is the file truncated?") from None
    if is_kerchunk(doc):
        return from_kerchunk(doc, name)
    raise SidecarError(f"{name}: not a sidecar refindex knows (no kerchunk 'refs', "
                       "no Zarr metadata keys)")


def load_index(location: str | os.PathLike | dict, options=None) -> Index:
    """Load the Index a sidecar describes, from a local path, a URL or a decoded document."""
    if isinstance(location, dict):
        return parse_index(location)
    name = os.fspath(location)
    return parse_index(sidecar_bytes(name, options), name)


def write_index(index: Index, path: str | os.PathLike) -> int:
    """Write ``index`` as kerchunk reference JSON (version 1) to ``path``; returns bytes written."""
    data = ujson.dumps(to_kerchunk(index), escape_forward_slashes=False).encode()
    Path(path).write_bytes(data)
    return len(data)
