"""Where sidecar files are: local paths or URLs, read whole through the I/O engine, and the
files next to them (the parts of a directory sidecar, a parquet reference set)."""

from __future__ import annotations

import os
from pathlib import Path

from refindex.errors import SidecarError, SourceNotFoundError


def is_local(location: str | os.PathLike) -> bool:
    """Whether ``location`` names a local file (a path or a ``file://`` URL)."""
    text = os.fspath(location)
    return "://" not in text or text.startswith("file://")


def local_path(location: str | os.PathLike) -> Path:
    """The path a local ``location`` (a path or ``file://`` URL) names."""
    return Path(os.fspath(location).removeprefix("file://"))


def is_local_directory(location: str | os.PathLike) -> bool:
    return is_local(location) and local_path(location).is_dir()


def sidecar_bytes(location: str | os.PathLike, options=None) -> bytes:
    """The raw bytes of a sidecar, from a local path or any URL the I/O engine reads."""
    text = os.fspath(location)
    if is_local(text):
        path = local_path(text)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise SourceNotFoundError(f"{path}: sidecar not found") from None
        except IsADirectoryError:
            raise SidecarError(f"{path}: is a directory, not a sidecar file") from None
    from refindex.io import RangeRequest, ReadEngine

    engine = ReadEngine(options)
    try:
        return engine.read_sync([RangeRequest(text, 0, -1)])[0]
    finally:
        engine.close_sync()


def member(directory: str | os.PathLike, name: str) -> str:
    """The location of ``name`` (a relative, ``/``-separated name) inside ``directory``."""
    text = os.fspath(directory)
    if is_local(text):
        return str(local_path(text).joinpath(*name.split("/")))
    return text.rstrip("/") + "/" + name


def sibling(location: str | os.PathLike, name: str) -> str:
    """The location of ``name`` in the directory that holds the file at ``location``."""
    text = os.fspath(location)
    if is_local(text):
        return str(local_path(text).parent.joinpath(*name.split("/")))
    return text.rsplit("/", 1)[0] + "/" + name
