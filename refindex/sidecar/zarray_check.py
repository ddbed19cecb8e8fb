"""The checks of Zarr v2 array metadata (``.zarray``) read from a sidecar: what zarr would
refuse, or what would overflow a chunk table, is a ``SidecarError`` naming the sidecar and
the key when the sidecar is opened, not an exception from zarr or NumPy at the first read."""

from __future__ import annotations

import math

import ujson
from zarr.core.metadata.v2 import ArrayV2Metadata

from refindex.errors import SidecarError

MAX_CHUNKS = 2**48  # chunks of one array, and elements of one chunk: beyond, int64 overflows
# Metadata zarr has accepted, as canonical JSON: the members of a collection repeat the same
# .zarray thousands of times, and zarr's validation costs ~70 us each (a third of a combine).
_ACCEPTED: set[str] = set()
_ACCEPTED_MAX = 4096


def check_zarray(meta: object, key: str, name: str) -> None:
    """Raise a SidecarError naming ``key`` unless ``meta`` is usable Zarr v2 array metadata."""
    if not isinstance(meta, dict) or meta.get("zarr_format") != 2:
        raise SidecarError(f"{name}: {key}: not Zarr v2 array metadata")
    for field in ("shape", "chunks", "dtype"):
        if field not in meta:
            raise SidecarError(f"{name}: {key}: missing {field!r}")
    shape, chunks = meta["shape"], meta["chunks"]
    if not (_int_list(shape) and _int_list(chunks)):
        raise SidecarError(f"{name}: {key}: shape and chunks must be lists of integers, got "
                           f"{shape!r} and {chunks!r}")
    if len(shape) != len(chunks) or any(n < 0 for n in shape) or any(c <= 0 for c in chunks):
        raise SidecarError(f"{name}: {key}: shape {meta['shape']} and chunks {meta['chunks']} "
                           "do not fit together")
    if math.prod(-(-n // c) for n, c in zip(shape, chunks, strict=True)) > MAX_CHUNKS or (
            math.prod(chunks) > MAX_CHUNKS):
        raise SidecarError(f"{name}: {key}: shape {shape} in chunks of {chunks} makes more "
                           f"than {MAX_CHUNKS} chunks, or chunks of more than {MAX_CHUNKS} "
                           "elements")
    filters = meta.get("filters")
    codecs = [meta.get("compressor"), *(filters if isinstance(filters, list) else [])]
    if (filters is not None and not isinstance(filters, list)) or not all(
            codec is None or (isinstance(codec, dict) and isinstance(codec.get("id"), str))
            for codec in codecs):
        raise SidecarError(f"{name}: {key}: 'compressor' must be null or a codec "
                           "{\"id\": ..., ...}, and 'filters' null or a list of codecs")
    try:
        canonical = ujson.dumps(meta, sort_keys=True)
    except (TypeError, ValueError, OverflowError):
        canonical = None  # not JSON (a sidecar built in Python): zarr judges it every time
    if canonical is not None and canonical in _ACCEPTED:
        return
    try:
        # What zarr will make of it when the array is opened: fail here, naming the sidecar.
        # (Codecs are left out, one not installed here is refused when a chunk is read; but
        # not an object array's filters: zarr finds its object codec there.)
        objects = "O" in str(meta.get("dtype"))
        ArrayV2Metadata.from_dict({**meta, "compressor": None,
                                   "filters": meta.get("filters") if objects else None})
    except Exception as exc:  # noqa: BLE001 - zarr raises ValueError, TypeError, KeyError...
        raise SidecarError(f"{name}: {key}: not valid Zarr v2 array metadata "
                           f"({type(exc).__name__}: {str(exc)[:200]})") from None
    if canonical is not None:
        if len(_ACCEPTED) >= _ACCEPTED_MAX:
            _ACCEPTED.clear()
        _ACCEPTED.add(canonical)


def is_int(value: object) -> bool:
    """An integer that is not a bool (JSON's ``true`` is an int to Python)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _int_list(value: object) -> bool:
    return isinstance(value, list) and all(is_int(v) for v in value)
