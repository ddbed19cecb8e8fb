"""An array's Zarr v2 ``.zarray`` (as refindex's index holds it) as Zarr v3 metadata for a
VirtualiZarr ``ManifestArray``, with codecs that decode every chunk exactly, or a refusal
naming the array and what has no Zarr v3 form.

Zarr v2 decodes a chunk with its compressor, then its filters last first, then views the
bytes as the dtype; Zarr v3 decodes bytes-to-bytes codecs, then one array-to-bytes codec
(``bytes`` with the byte order, or ``vlen-utf8``/``vlen-bytes`` for strings), then
array-to-array codecs. So a v2 pipeline maps exactly when it is array-to-array codecs
(``delta``, ``fixedscaleoffset``, ...) followed by bytes-to-bytes ones (``shuffle``,
``zlib``, refindex's HDF5 filter codecs): each numcodecs ``id`` becomes ``numcodecs.<id>``
(zarr-python's wrappers, and refindex's own in ``zarr_codecs``). Anything else is refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from xarray.backends.zarr import FillValueCoder
from zarr.abc.codec import ArrayArrayCodec, ArrayBytesCodec, BytesBytesCodec
from zarr.codecs import BytesCodec, TransposeCodec, VLenBytesCodec, VLenUTF8Codec
from zarr.core.dtype.common import HasEndianness
from zarr.core.metadata import ArrayV2Metadata, ArrayV3Metadata
from zarr.registry import get_codec_class

from refindex.virtualizarr.zarr_codecs import PREFIX
from refindex.xarray.attributes import typed_attrs

DIMENSIONS = "_ARRAY_DIMENSIONS"
CHUNK_KEYS = {"name": "default", "configuration": {"separator": "."}}
"""Chunk keys as ``c.0.1``: the one encoding VirtualiZarr's ManifestStore lists."""

_STRING_CODECS = {"vlen-utf8": VLenUTF8Codec, "vlen-bytes": VLenBytesCodec}


class Refusal(Exception):
    """What about one array has no Zarr v3 form (turned into an UnsupportedFeatureError
    naming the file and the array by the caller)."""


def v3_metadata(zarray: Mapping[str, Any], attrs: Mapping[str, Any],
                attr_dtypes: Mapping[str, str], dims: Sequence[str]) -> ArrayV3Metadata:
    """Zarr v3 metadata equivalent to ``zarray``, with ``attrs`` (JSON values, restored to
    ``attr_dtypes``) as attributes and ``dims`` as dimension names. Raises Refusal."""
    for config in _configs(zarray):  # named first: zarr's own complaint would hide them
        _v3_class(config)
    try:
        v2 = ArrayV2Metadata.from_dict({**zarray, "zarr_format": 2, "attributes": {}})
    except Exception as exc:  # zarr's own reasons: a dtype or fill value it cannot parse
        raise Refusal(f"zarr cannot read its .zarray ({exc})") from None
    dtype = v2.dtype.to_native_dtype()
    try:
        codecs = _codecs(zarray, v2)
        fill_value = v2.fill_value
        if fill_value is None:  # v2 allows none: absent chunks read as the dtype's default
            fill_value = v2.dtype.default_scalar()
        return ArrayV3Metadata(
            shape=v2.shape, data_type=v2.dtype,
            chunk_grid={"name": "regular", "configuration": {"chunk_shape": v2.chunks}},
            chunk_key_encoding=CHUNK_KEYS, fill_value=fill_value, codecs=codecs,
            attributes=v3_attributes(attrs, attr_dtypes, dtype),
            dimension_names=tuple(dims), storage_transformers=None)
    except Refusal:
        raise
    except Exception as exc:
        raise Refusal(f"Zarr v3 cannot describe it ({type(exc).__name__}: {exc})") from None


def _configs(zarray: Mapping[str, Any]) -> list:
    """The numcodecs configs of ``zarray`` in encoding order: filters, then compressor."""
    configs = [*(zarray.get("filters") or ())]
    if zarray.get("compressor"):
        configs.append(zarray["compressor"])
    return configs


def _codecs(zarray: Mapping[str, Any], v2: ArrayV2Metadata) -> list:
    array_array: list = []
    if v2.order == "F":
        array_array.append(TransposeCodec(order=tuple(range(len(v2.shape) - 1, -1, -1))))
    array_bytes = None
    bytes_bytes: list = []
    for config in _configs(zarray):
        codec_id = config["id"]
        if codec_id in _STRING_CODECS:
            if array_bytes is not None or bytes_bytes:
                raise Refusal(f"codec {codec_id!r} after a codec that makes bytes has no "
                              "Zarr v3 order")
            array_bytes = _STRING_CODECS[codec_id]()
            continue
        codec = _v3_class(config).from_dict(
            {"name": PREFIX + codec_id,
             "configuration": {k: v for k, v in config.items() if k != "id"}})
        if isinstance(codec, ArrayArrayCodec) and array_bytes is None and not bytes_bytes:
            array_array.append(codec)
        elif isinstance(codec, BytesBytesCodec):
            bytes_bytes.append(codec)
        elif isinstance(codec, ArrayBytesCodec):
            # Works in a ManifestStore, but VirtualiZarr's kerchunk writer leaves
            # array-to-bytes codecs out of the .zarray: a reader would misread every chunk.
            raise Refusal(f"codec {codec_id!r} turns bytes into an array: VirtualiZarr's "
                          "kerchunk output would drop it")
        else:
            raise Refusal(f"codec {codec_id!r} after a codec that makes bytes has no Zarr "
                          "v3 order")
    if array_bytes is None:
        endian = v2.dtype.endianness if isinstance(v2.dtype, HasEndianness) else None
        array_bytes = BytesCodec(endian=endian)
    return [*array_array, array_bytes, *bytes_bytes]


def _v3_class(config: Any) -> type | None:
    """The Zarr v3 codec class of a numcodecs config (None for the string codecs, which
    become the array-to-bytes codec), or Refusal."""
    codec_id = config.get("id") if isinstance(config, Mapping) else None
    if not isinstance(codec_id, str) or not codec_id:
        raise Refusal(f"codec config {config!r} has no 'id'")
    if codec_id in _STRING_CODECS:
        return None
    try:
        return get_codec_class(PREFIX + codec_id)
    except KeyError:
        raise Refusal(f"codec {codec_id!r} has no Zarr v3 form") from None


def v3_attributes(attrs: Mapping[str, Any], attr_dtypes: Mapping[str, str],
                  dtype: np.dtype) -> dict[str, Any]:
    """JSON attributes for Zarr v3: refindex's recorded types restored (a float32
    ``scale_factor``, a NaN that JSON holds as ``"NaN"``), then as plain values, and
    ``_FillValue`` encoded as xarray reads it from Zarr v3 (base64 for floats)."""
    typed = typed_attrs({k: v for k, v in attrs.items() if k != DIMENSIONS}, attr_dtypes)
    out = {name: _plain(value) for name, value in typed.items()}
    if "_FillValue" in typed:
        if dtype.kind in "biufc":
            # The array's own type (a NaN that JSON holds as "NaN" has no recorded dtype).
            value = np.asarray(typed["_FillValue"]).astype(dtype)
            if value.size == 1:
                out["_FillValue"] = FillValueCoder.encode(value.reshape(()).item(), dtype)
        else:
            # xarray reads a _FillValue attribute from Zarr v3 for numbers only: for strings
            # and records it refuses to open the variable. Not carried over for them.
            del out["_FillValue"]
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()] if value.ndim else _plain(value.item())
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, complex):
        return [value.real, value.imag]
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
