"""An array's Zarr v2 ``.zarray`` (as an Index holds it) as the Zarr v3 ``zarr.json`` that
decodes the same chunk bytes to the same values, or a refusal naming what has no v3 form.

Codecs become zarr-python's ``numcodecs.*`` wrappers, placed by what they work on: array →
array filters before ``bytes``, byte → byte filters and the compressor after it (a v2 filter
list may mix them, as HDF5's shuffle + deflate pipelines do, which v3 orders the same way as
long as no array filter follows a byte filter). Chunk keys use v3's default encoding
(``c/0/1``), the one Icechunk accepts; the chunk grid is the same C-order grid.
"""

from __future__ import annotations

import base64
import struct
import warnings

import numpy as np

from refindex.errors import UnsupportedFeatureError
from refindex.index import ArrayNode

DIMENSIONS_ATTR = "_ARRAY_DIMENSIONS"  # xarray's v2 dimension names; v3 has dimension_names


def zarr_v3_array(node: ArrayNode, where: str) -> dict:
    """The ``zarr.json`` document of ``node``; :class:`UnsupportedFeatureError` (naming
    ``where`` and the array) when zarr-python could not read it back exactly."""
    from zarr.core.metadata.v3 import ArrayV3Metadata

    def refuse(feature: str, hint: str = "") -> UnsupportedFeatureError:
        return UnsupportedFeatureError(where, "/" + node.path, feature, hint)

    if node.irregular:
        raise refuse("chunks of uneven shapes (a collection combined from members of uneven "
                     "lengths) have no form in Icechunk's regular chunk grid",
                     "export the members separately, or keep this dataset as a refindex "
                     "sidecar")
    zarray = node.zarray
    zdtype = _data_type(zarray, refuse)
    endian = getattr(zdtype, "endianness", None)
    codecs = []
    if zarray.get("order", "C") == "F":
        codecs.append({"name": "transpose",
                       "configuration": {"order": list(range(len(zarray["shape"]))[::-1])}})
    codecs += _codecs(zarray, endian, refuse)
    attrs = dict(node.attrs)
    names = attrs.pop(DIMENSIONS_ATTR, None)
    if "_FillValue" in attrs:
        attrs["_FillValue"] = xarray_fill_value(attrs["_FillValue"], np.dtype(
            _numpy_form(zarray["dtype"])))
    doc = {"zarr_format": 3, "node_type": "array", "shape": list(zarray["shape"]),
           "data_type": zdtype.to_json(zarr_format=3),
           "chunk_grid": {"name": "regular",
                          "configuration": {"chunk_shape": list(zarray["chunks"])}},
           "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
           "fill_value": _fill_value(zdtype, zarray.get("fill_value"), refuse),
           "codecs": codecs, "attributes": attrs}
    if isinstance(names, list) and len(names) == len(zarray["shape"]):
        doc["dimension_names"] = names
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numcodecs codecs and some dtypes are "unstable" v3
        try:
            ArrayV3Metadata.from_dict(dict(doc))
        except (TypeError, ValueError, KeyError) as exc:
            raise refuse(f"zarr-python cannot read its Zarr v3 form ({exc})") from None
    return doc


def _data_type(zarray: dict, refuse):
    from zarr.core.dtype import get_data_type_from_json

    v2 = zarray["dtype"]
    if v2 in ("|O", "O") or any(f.get("id") == "refindex.objects"
                                for f in zarray.get("filters") or []):
        raise refuse("variable-length values (object dtype) have no Zarr v3 form "
                     "zarr-python reads")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            zdtype = get_data_type_from_json({"name": v2, "object_codec_id": None},
                                             zarr_format=2)
        except (TypeError, ValueError) as exc:
            raise refuse(f"data type {v2!r} has no Zarr v3 form zarr-python reads "
                         f"({exc})") from None
        native = zdtype.to_native_dtype()
        endian = getattr(zdtype, "endianness", None)
        if endian is not None:
            native = native.newbyteorder("<" if endian == "little" else ">")
        if native != np.dtype(_numpy_form(v2)):
            # A structured type with big-endian fields: v3 has one byte order per array.
            raise refuse(f"data type {v2!r} has no Zarr v3 form that keeps its byte order")
    return zdtype


def _numpy_form(v2):
    if isinstance(v2, list):
        return [tuple(_numpy_form(f) if i == 1 else f for i, f in enumerate(field))
                for field in v2]
    return v2


def _codecs(zarray: dict, endian: str | None, refuse) -> list[dict]:
    from zarr.abc.codec import ArrayArrayCodec, ArrayBytesCodec
    from zarr.registry import get_codec_class

    steps = list(zarray.get("filters") or [])
    if zarray.get("compressor"):
        steps.append(zarray["compressor"])
    before, serializer, after = [], None, []
    for config in steps:
        codec_id = config.get("id", "")
        name = f"numcodecs.{codec_id}"
        try:
            cls = get_codec_class(name)
        except (KeyError, ImportError):  # ImportError: a registered codec that cannot load
            raise refuse(f"codec {codec_id!r} has no Zarr v3 form zarr-python reads (no "
                         f"{name!r} in zarr's codec registry)",
                         "keep this dataset as a refindex or kerchunk sidecar") from None
        entry = {"name": name,
                 "configuration": {k: v for k, v in config.items() if k != "id"}}
        if issubclass(cls, ArrayArrayCodec) and serializer is None and not after:
            before.append(entry)
        elif issubclass(cls, ArrayBytesCodec) and serializer is None and not after:
            serializer = entry
        elif not issubclass(cls, (ArrayArrayCodec, ArrayBytesCodec)):
            after.append(entry)
        else:
            raise refuse(f"codec {codec_id!r} works on arrays but follows a codec that "
                         "works on bytes; Zarr v3 cannot order them so")
    if serializer is None:
        serializer = {"name": "bytes",
                      "configuration": {"endian": endian} if endian else {}}
    return before + [serializer] + after


def _fill_value(zdtype, fill, refuse):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            scalar = (zdtype.default_scalar() if fill is None
                      else zdtype.from_json_scalar(fill, zarr_format=2))
            return zdtype.to_json_scalar(scalar, zarr_format=3)
        except (TypeError, ValueError) as exc:
            raise refuse(f"fill value {fill!r} has no Zarr v3 form ({exc})") from None


def xarray_fill_value(value, dtype: np.dtype):
    """A ``_FillValue`` attribute as xarray reads it from a Zarr v3 array: floats as the
    base64 of their little-endian float64 bytes (complex: a pair), byte strings as base64,
    integers and booleans as JSON numbers and booleans. Values of other forms are kept."""
    try:
        if dtype.kind == "f":
            return _base64_float(value)
        if dtype.kind == "c" and isinstance(value, list) and len(value) == 2:
            return [_base64_float(v) for v in value]
        if dtype.kind == "S":
            data = value.encode("latin-1") if isinstance(value, str) else bytes(value)
            return base64.standard_b64encode(data).decode()
        if dtype.kind in "iu":
            return int(value)
        if dtype.kind == "b":
            return bool(value)
    except (TypeError, ValueError, UnicodeEncodeError):
        pass
    return value


def _base64_float(value) -> str:
    # JSON has no NaN or infinities: refindex writes them as the strings float() reads.
    return base64.standard_b64encode(struct.pack("<d", float(value))).decode()
