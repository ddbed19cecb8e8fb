"""The sources of a native sidecar: a list of maps, or, for many sources, packed columns.

A combined collection has a source per member — ten thousand files, each with a URL, size,
ETag and last-modified time — and few chunks each, so the sources, written as a map each,
would outweigh the chunk tables several times over. Packed (native format 2.0), they are one
zstd frame of the four columns as JSON lists: URLs sharing a prefix and dates sharing a day
compress to a few bytes, an ETag to the 16 bytes of its MD5.
"""

from __future__ import annotations

import base64
import binascii

import ujson
from numcodecs import Zstd

from refindex.errors import SidecarError
from refindex.index import Source

PACK_ABOVE = 16  # sources written as maps up to this many, packed beyond
_FIELDS = ("url", "size", "etag", "last_modified")
_ZSTD = Zstd(level=9)


def encode_sources(sources: list[Source]) -> list[dict] | dict:
    """The ``sources`` entry of a native document: maps, or packed columns when many."""
    if len(sources) <= PACK_ABOVE:
        return [{k: v for k, v in vars(s).items() if v is not None} for s in sources]
    columns = {field: [getattr(s, field) for s in sources] for field in _FIELDS}
    packed = _ZSTD.encode(ujson.dumps(columns, ensure_ascii=False).encode())
    return {"count": len(sources), "compression": "zstd",
            "columns": base64.b64encode(packed).decode()}


def packed(entry: object) -> bool:
    """Whether a ``sources`` entry is packed (needs a 2.x reader)."""
    return isinstance(entry, dict)


def decode_sources(entry: object, name: str) -> list[Source]:
    """The sources of a ``sources`` entry (maps or packed columns), checked."""
    if isinstance(entry, dict):
        return _unpack(entry, name)
    if not isinstance(entry, list):
        raise SidecarError(f"{name}: 'sources' must be a list, or packed columns")
    fields = set(_FIELDS)
    sources = []
    for i, item in enumerate(entry):
        if not isinstance(item, dict) or "url" not in item or not set(item) <= fields:
            raise SidecarError(f"{name}: sources[{i}]: expected a map with 'url' and "
                               f"optionally {sorted(fields - {'url'})}, got {item!r:.80}")
        sources.append(checked_source(item, f"{name}: sources[{i}]"))
    return sources


def checked_source(fields: dict, where: str) -> Source:
    """The Source of one sidecar entry, its fields' types checked (a URL that is not text
    would fail far from the sidecar, in the source policy or the fetcher)."""
    url, size = fields.get("url"), fields.get("size")
    if not isinstance(url, str) or not url:
        problem = f"'url' must be a non-empty string, got {url!r:.80}"
    elif size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        problem = f"'size' must be a byte count, got {size!r:.80}"
    else:
        problem = next((f"{field!r} must be a string, got {fields[field]!r:.80}"
                        for field in ("etag", "last_modified")
                        if not isinstance(fields.get(field), str | None)), None)
    if problem is not None:
        raise SidecarError(f"{where}: {problem}")
    return Source(**fields)


def _unpack(entry: dict, name: str) -> list[Source]:
    count = entry.get("count")
    if entry.get("compression") != "zstd" or not isinstance(count, int):
        raise SidecarError(f"{name}: packed 'sources' need 'count' and 'compression': 'zstd'")
    try:
        columns = ujson.loads(_ZSTD.decode(base64.b64decode(entry.get("columns", ""),
                                                            validate=True)))
    except (binascii.Error, ValueError, RuntimeError, TypeError) as error:
        raise SidecarError(f"{name}: packed 'sources' do not decode ({error})") from None
    if not isinstance(columns, dict) or any(
            not isinstance(columns.get(f), list) or len(columns[f]) != count for f in _FIELDS):
        raise SidecarError(f"{name}: packed 'sources' must hold {count} values of each of "
                           f"{list(_FIELDS)}")
    return [checked_source(dict(zip(_FIELDS, values, strict=True)),
                           f"{name}: packed 'sources'[{i}]")
            for i, values in enumerate(zip(*(columns[f] for f in _FIELDS), strict=True))]
