"""What the scan needs to know of one Zarr array: the Zarr v2 metadata readers will get, how
the store names its chunks (or shards), and the grid of those keys."""

from __future__ import annotations

import math
from dataclasses import dataclass

from refindex.errors import ContainerError
from refindex.scan.zarrstore.cf import v2_marker
from refindex.scan.zarrstore.sharding import ShardLayout


@dataclass(frozen=True)
class ChunkKeys:
    """How an array names its stored chunks below its own path: ``prefix`` (``"c"`` for
    Zarr v3's default encoding, else empty), then the grid coordinates joined by
    ``separator``; an array of no dimensions uses ``prefix`` alone, or ``"0"``."""

    separator: str
    ndim: int
    prefix: str = ""

    def coords(self, name: str) -> tuple[int, ...] | None:
        """Grid coordinates named by ``name`` (relative to the array), None if it is not a
        chunk key of this encoding."""
        if self.ndim == 0:
            return () if name == (self.prefix or "0") else None
        if self.prefix:
            if not name.startswith(self.prefix + self.separator):
                return None
            name = name[len(self.prefix) + 1:]
        parts = name.split(self.separator)
        if len(parts) != self.ndim or not all(p.isascii() and p.isdigit() for p in parts):
            return None
        return tuple(int(p) for p in parts)


@dataclass(frozen=True)
class ArraySpec:
    """One array of the store.

    ``zarray`` is the Zarr v2 metadata readers get (with ``chunks`` the inner chunks of a
    sharded array); ``keys`` name the stored objects (chunks, or shards when ``shard`` is
    set) and ``grid`` is the grid of those objects.
    """

    path: str
    zarray: dict
    attrs: dict
    keys: ChunkKeys
    grid: tuple[int, ...]
    shard: ShardLayout | None = None
    zarr_format: int = 2

    @property
    def chunk_grid(self) -> tuple[int, ...]:
        """The grid of the chunks readers see (inner chunks of a sharded array)."""
        return _grid(self.zarray["shape"], self.zarray["chunks"])


def v2_array(zarray: object, attrs: object, path: str, where: str) -> ArraySpec:
    """An array described by a Zarr v2 ``.zarray`` (and ``.zattrs``) document, as it is
    (but for the ``fill_value`` also given as ``_FillValue``: see ``cf``)."""
    if not isinstance(zarray, dict) or zarray.get("zarr_format") != 2:
        raise ContainerError(f"{where}: {path or '/'}/.zarray is not Zarr v2 array metadata")
    shape, chunks = zarray.get("shape"), zarray.get("chunks")
    if not (_dims(shape) and _dims(chunks) and len(shape) == len(chunks)
            and all(c > 0 for c in chunks)):
        raise ContainerError(f"{where}: {path or '/'}/.zarray: shape {shape!r} and chunks "
                             f"{chunks!r} are not a valid chunk grid")
    separator = zarray.get("dimension_separator") or "."
    if separator not in (".", "/"):
        raise ContainerError(f"{where}: {path or '/'}/.zarray: dimension_separator "
                             f"{separator!r} is neither '.' nor '/'")
    if not isinstance(attrs, dict):
        raise ContainerError(f"{where}: {path or '/'}/.zattrs is not a JSON object")
    return ArraySpec(path, dict(zarray), v2_marker(dict(attrs), zarray),
                     ChunkKeys(separator, len(shape)), _grid(shape, chunks))


def _dims(value: object) -> bool:
    return isinstance(value, list) and all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in value)


def _grid(shape: list[int], chunks: list[int]) -> tuple[int, ...]:
    return tuple(math.ceil(n / c) for n, c in zip(shape, chunks, strict=True))
