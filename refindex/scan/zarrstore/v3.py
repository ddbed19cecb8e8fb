"""Zarr v3 array metadata (``zarr.json``) as the equivalent Zarr v2 ``.zarray``, so that the
index, the store and v2-only readers serve v3 arrays unchanged; sharded arrays become arrays
of their inner chunks.

v3 names a chain of codecs: array-to-array (``transpose``), one array-to-bytes (``bytes``
with an endianness, ``vlen-utf8``/``vlen-bytes``, or ``sharding_indexed`` with an inner
chain), then bytes-to-bytes (``gzip``, ``zstd``, ``blosc``, ``crc32c``, numcodecs'
``numcodecs.*``). In v2 the endianness lives in the dtype, a transpose is ``order: "F"``, the
bytes-to-bytes codecs are the filters and the compressor. Data types and fill values go
through zarr-python's own data-type classes. Whatever has no exact v2 equivalent raises
UnsupportedFeatureError naming the array and the feature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from refindex.errors import ContainerError, UnsupportedFeatureError
from refindex.scan.zarrstore.arrays import ArraySpec, ChunkKeys
from refindex.scan.zarrstore.cf import v3_marker
from refindex.scan.zarrstore.sharding import shard_layout

_ARRAY_TO_BYTES = ("bytes", "vlen-utf8", "vlen-bytes", "sharding_indexed")
_SHUFFLES = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}
_SEPARATOR = "/"  # of the v2 chunk keys readers see


@dataclass(frozen=True)
class _Chain:
    """A codec chain split by kind, each codec as (name, configuration)."""

    array_array: list[tuple[str, dict]]
    array_bytes: tuple[str, dict]
    bytes_bytes: list[tuple[str, dict]]


def v3_array(doc: dict, path: str, where: str) -> ArraySpec:
    """The v2 view of the v3 array ``path`` described by ``doc`` (its zarr.json)."""
    shape = doc.get("shape")
    if not (isinstance(shape, list) and all(isinstance(n, int) and n >= 0 for n in shape)):
        raise ContainerError(f"{where}: {path or '/'}/zarr.json: invalid shape {shape!r}")
    if doc.get("storage_transformers"):
        raise UnsupportedFeatureError(where, path, "storage transformers",
                                      "no Zarr v2 equivalent")
    stored_chunks = _regular_chunks(doc, len(shape), where, path)
    chain = _split(doc.get("codecs"), where, path)
    shard = None
    chunks = stored_chunks
    if chain.array_bytes[0] == "sharding_indexed":
        if chain.array_array or chain.bytes_bytes:
            raise UnsupportedFeatureError(where, path, "codecs around sharding_indexed",
                                          "inner chunks cannot be referenced in place")
        config = chain.array_bytes[1]
        shard = shard_layout(config, stored_chunks, where, path)
        chunks = list(config["chunk_shape"])
        chain = _split(config.get("codecs"), where, path)
        if chain.array_bytes[0] == "sharding_indexed":
            raise UnsupportedFeatureError(where, path, "nested sharding",
                                          "inner chunks of inner shards are not read")
    dtype, fill, object_codec, kind = _dtype_and_fill(doc, chain.array_bytes, where, path)
    filters = ([{"id": object_codec}] if object_codec else []) + [
        _numcodec(name, config, where, path) for name, config in chain.bytes_bytes]
    zarray = {
        "zarr_format": 2, "shape": shape, "chunks": chunks, "dtype": dtype,
        "fill_value": fill, "order": _order(chain.array_array, len(shape), where, path),
        "filters": filters[:-1] or None, "compressor": filters[-1] if filters else None,
        "dimension_separator": _SEPARATOR,
    }
    if object_codec and not chain.bytes_bytes:  # the object codec must stay a filter
        zarray["filters"], zarray["compressor"] = filters, None
    grid = tuple(math.ceil(n / c) for n, c in zip(shape, stored_chunks, strict=True))
    return ArraySpec(path, zarray, v3_marker(_attrs(doc, where, path), kind),
                     _chunk_keys(doc, len(shape), where, path), grid, shard, zarr_format=3)


def _regular_chunks(doc: dict, ndim: int, where: str, path: str) -> list[int]:
    grid = doc.get("chunk_grid") or {}
    if grid.get("name") != "regular":
        raise UnsupportedFeatureError(where, path, f"chunk grid {grid.get('name')!r}",
                                      "only regular chunk grids have a Zarr v2 equivalent")
    chunks = (grid.get("configuration") or {}).get("chunk_shape")
    if not (isinstance(chunks, list) and len(chunks) == ndim
            and all(isinstance(n, int) and n > 0 for n in chunks)):
        raise ContainerError(f"{where}: {path or '/'}/zarr.json: invalid chunk_shape "
                             f"{chunks!r}")
    return chunks


def _chunk_keys(doc: dict, ndim: int, where: str, path: str) -> ChunkKeys:
    encoding = doc.get("chunk_key_encoding") or {"name": "default"}
    name, config = _named(encoding, where, path)
    if name == "default":
        separator = config.get("separator", "/")
        prefix = "c"
    elif name == "v2":
        separator = config.get("separator", ".")
        prefix = ""
    else:
        raise UnsupportedFeatureError(where, path, f"chunk key encoding {name!r}")
    if separator not in (".", "/"):
        raise ContainerError(f"{where}: {path or '/'}/zarr.json: chunk key separator "
                             f"{separator!r} is neither '.' nor '/'")
    return ChunkKeys(separator, ndim, prefix)


def _named(codec: object, where: str, path: str) -> tuple[str, dict]:
    """(name, configuration) of a v3 extension given as a name or a named object."""
    if isinstance(codec, str):
        return codec, {}
    if isinstance(codec, dict) and isinstance(codec.get("name"), str):
        config = codec.get("configuration") or {}
        if isinstance(config, dict):
            return codec["name"], config
    raise ContainerError(f"{where}: {path or '/'}/zarr.json: invalid codec {codec!r}")


def _split(codecs: object, where: str, path: str) -> _Chain:
    if not isinstance(codecs, list):
        raise ContainerError(f"{where}: {path or '/'}/zarr.json: codecs must be a list")
    named = [_named(c, where, path) for c in codecs]
    serializers = [i for i, (name, _) in enumerate(named) if name in _ARRAY_TO_BYTES]
    if len(serializers) != 1:
        unknown = [name for name, _ in named if name not in _ARRAY_TO_BYTES]
        if unknown and not serializers:
            raise UnsupportedFeatureError(where, path, f"codec {unknown[0]!r}")
        raise ContainerError(f"{where}: {path or '/'}/zarr.json: codecs {named} need exactly "
                             "one array-to-bytes codec")
    cut = serializers[0]
    return _Chain(named[:cut], named[cut], named[cut + 1:])


def _dtype_and_fill(doc: dict, serializer: tuple[str, dict], where: str,
                    path: str) -> tuple[object, object, str | None, str]:
    """The v2 dtype, fill value (JSON), object codec id and NumPy kind of the v3 data type,
    with the byte order the ``bytes`` codec gives it."""
    # zarr loads only when a v3 store is scanned: scan workers of HDF5 files never need it.
    from zarr.core.dtype import get_data_type_from_json, get_data_type_from_native_dtype

    try:
        zdtype = get_data_type_from_json(doc.get("data_type"), zarr_format=3)
        fill = zdtype.from_json_scalar(doc.get("fill_value"), zarr_format=3)
    except (ValueError, TypeError, KeyError) as error:
        raise UnsupportedFeatureError(where, path, f"data type {doc.get('data_type')!r}",
                                      f"zarr cannot read it ({error})") from None
    name, config = serializer
    native = zdtype.to_native_dtype()
    if name == "bytes":
        endian = config.get("endian")
        if native.itemsize > 1 and native.kind not in "OT":
            if endian not in ("little", "big"):
                raise ContainerError(f"{where}: {path or '/'}/zarr.json: bytes codec endian "
                                     f"{endian!r}")
            native = native.newbyteorder("<" if endian == "little" else ">")
        v2type = get_data_type_from_native_dtype(native)
    else:
        v2type = zdtype
    described = v2type.to_json(zarr_format=2)
    object_codec = described.get("object_codec_id")
    if (name == "bytes") != (object_codec is None) or (object_codec and object_codec != name):
        raise UnsupportedFeatureError(where, path, f"data type {doc.get('data_type')!r} "
                                      f"with codec {name!r}")
    fill_json = v2type.to_json_scalar(fill, zarr_format=2)
    if not _same_scalar(v2type.from_json_scalar(fill_json, zarr_format=2), fill, native):
        raise UnsupportedFeatureError(where, path, f"fill value {doc.get('fill_value')!r}",
                                      "Zarr v2 metadata cannot express it exactly")
    return described["name"], fill_json, object_codec, native.kind


def _same_scalar(a: object, b: object, dtype: np.dtype) -> bool:
    """Whether two fill values are the same bits (NaN payloads included)."""
    if dtype.kind in "OT":
        return a == b
    return np.asarray(a, dtype=dtype).tobytes() == np.asarray(b, dtype=dtype).tobytes()


def _order(transposes: list[tuple[str, dict]], ndim: int, where: str, path: str) -> str:
    """``"C"``, or ``"F"`` when the transposes reverse the axes (v2's Fortran order)."""
    axes = list(range(ndim))
    for name, config in transposes:
        order = config.get("order")
        if name != "transpose":
            raise UnsupportedFeatureError(where, path, f"codec {name!r}",
                                          "array-to-array codecs other than transpose have "
                                          "no exact Zarr v2 equivalent")
        if not (isinstance(order, list) and sorted(order) == list(range(ndim))):
            raise ContainerError(f"{where}: {path or '/'}/zarr.json: transpose order "
                                 f"{order!r}")
        axes = [axes[i] for i in order]
    if axes == list(range(ndim)):
        return "C"
    if axes == list(reversed(range(ndim))):
        return "F"
    raise UnsupportedFeatureError(where, path, f"transpose to axes {axes}",
                                  "Zarr v2 has C and F order only")


def _numcodec(name: str, config: dict, where: str, path: str) -> dict:
    """The numcodecs configuration that decodes exactly as the v3 bytes-to-bytes codec."""
    if name == "gzip":
        return {"id": "gzip", "level": config.get("level", 5)}
    if name == "zstd":
        return {"id": "zstd", "level": config.get("level", 0),
                "checksum": bool(config.get("checksum", False))}
    if name == "blosc":
        shuffle = config.get("shuffle", "noshuffle")
        if shuffle not in _SHUFFLES:
            raise ContainerError(f"{where}: {path or '/'}/zarr.json: blosc shuffle {shuffle!r}")
        return {"id": "blosc", "cname": config.get("cname", "zstd"),
                "clevel": config.get("clevel", 5), "shuffle": _SHUFFLES[shuffle],
                "blocksize": config.get("blocksize", 0)}
    if name == "crc32c":
        return {"id": "crc32c", "location": "end"}
    if name.startswith("numcodecs.") and _is_bytes_codec(name):
        # zarr wraps the numcodecs codec of that id and configuration: the same bytes.
        return {"id": name.removeprefix("numcodecs."), **config}
    raise UnsupportedFeatureError(where, path, f"codec {name!r}",
                                  "it has no exact Zarr v2 (numcodecs) equivalent")


def _is_bytes_codec(name: str) -> bool:
    from zarr.abc.codec import BytesBytesCodec
    from zarr.registry import get_codec_class

    try:
        return issubclass(get_codec_class(name), BytesBytesCodec)
    except (KeyError, ValueError, TypeError):
        return False


def _attrs(doc: dict, where: str, path: str) -> dict:
    """The v3 attributes, with ``dimension_names`` as xarray's ``_ARRAY_DIMENSIONS``."""
    attrs = doc.get("attributes") or {}
    if not isinstance(attrs, dict):
        raise ContainerError(f"{where}: {path or '/'}/zarr.json: attributes must be an object")
    attrs = dict(attrs)
    names = doc.get("dimension_names")
    if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
        attrs.setdefault("_ARRAY_DIMENSIONS", list(names))
    return attrs
