"""HDF5 attributes → JSON-able ``.zattrs`` values, dropping HDF5/NetCDF4 bookkeeping.

Encoding rules (``attr_to_json``), chosen to match kerchunk where it is exact and to stay
lossless where kerchunk is not:

* numbers → ``int``/``float``/``bool``; non-finite floats → ``"NaN"``, ``"Infinity"``,
  ``"-Infinity"``; complex → ``[real, imag]`` (parts encoded as floats);
* ``bytes`` (fixed-length strings) → ``str``, decoded as UTF-8, or, when they are not valid
  UTF-8, as Latin-1 (legacy files carry Latin-1 text such as ``"°C"``; Latin-1 maps each byte
  to one character, so nothing is dropped); variable-length strings stay ``str``;
* arrays → nested lists; a one-element array → its element (netCDF stores every scalar
  attribute as a 1-element array; netCDF4-python and kerchunk show the element);
* records (compounds) → ``{field: value}``; enums → their integer values;
* object and region references → the referenced object's path (``""`` if null);
* variable-length sequences → lists; opaque bytes → base64 ``str``; datetime64 → ISO 8601
  ``str`` (``"NaT"``); timedelta64 → its integer count in its own unit;
* ``h5py.Empty`` (a null dataspace) → ``None``.

JSON loses the type of numbers and of empty attributes; :func:`recorded_dtype` is what the
sidecar records beside them, so readers (the xarray backend) give back h5py's values.

CF attributes (``_FillValue``, ``scale_factor``, ``add_offset``, ``units``, ``valid_range``, ...)
are kept as stored. :func:`decode_attr_for_compare` inverts the rules given h5py's value, so a
test can assert that what zarr reads back equals what h5py reads.
"""

from __future__ import annotations

import base64
import warnings
from typing import Any

import h5py
import numpy as np

from refindex.scan.hdf5.types import reference_path
from refindex.scan.json_values import (
    complex_from_json,
    float_from_json,
    value_to_json,
)

__all__ = ["HIDDEN_ATTRS", "attr_to_json", "decode_attr_for_compare", "encode_attrs",
           "encode_attrs_and_dtypes", "recorded_dtype"]

# Attributes the HDF5 dimension-scale API and netCDF-C write for their own bookkeeping; the
# same set h5netcdf hides and kerchunk and VirtualiZarr drop. DIMENSION_LIST/REFERENCE_LIST
# hold object references between variables and their dimension scales (the dimension names
# reach Zarr as _ARRAY_DIMENSIONS instead); _Netcdf4Dimid/_Netcdf4Coordinates are netCDF-C's
# dimension ids; _NCProperties/_nc3_strict record the writing library and file flavour.
HIDDEN_ATTRS = frozenset(
    {
        "DIMENSION_LIST",
        "REFERENCE_LIST",
        "_Netcdf4Dimid",
        "_Netcdf4Coordinates",
        "_NCProperties",
        "_nc3_strict",
    }
)


def encode_attrs(obj: h5py.Group | h5py.Dataset) -> dict[str, Any]:
    """Every user attribute of ``obj`` as JSON-able values, bookkeeping attributes dropped.

    Attributes h5py cannot read (types NumPy has no equivalent for) are left out with a
    warning naming them, rather than failing the whole scan.
    """
    return encode_attrs_and_dtypes(obj)[0]


def encode_attrs_and_dtypes(obj: h5py.Group | h5py.Dataset
                            ) -> tuple[dict[str, Any], dict[str, str]]:
    """``encode_attrs`` of ``obj`` and the :func:`recorded_dtype` of each of its attributes
    that has one, in one pass over its attributes (each read once: a remote scan pays for
    every read)."""
    out: dict[str, Any] = {}
    dtypes: dict[str, str] = {}
    file = None  # h5py makes a new File object each time ``obj.file`` is asked: ask once
    for name in obj.attrs:
        if name in HIDDEN_ATTRS:
            continue
        try:
            value = obj.attrs[name]
        except (OSError, TypeError, ValueError) as e:
            warnings.warn(
                f"{obj.file.filename}: {obj.name}: attribute {name!r} skipped: {e}", stacklevel=2
            )
            continue
        if name in _BOOKKEEPING and _is_bookkeeping(obj, name, value):
            continue
        file = file or obj.file
        out[name] = attr_to_json(value, file)
        dtype = recorded_dtype(value)
        if dtype is not None:
            dtypes[name] = dtype
    return out, dtypes


def recorded_dtype(value: Any) -> str | None:
    """The NumPy dtype (as a string) a sidecar records for an attribute h5py reads as
    ``value``: that of every number (JSON has neither float32 nor NaN: CF decoding depends on
    the type, a float32 ``scale_factor`` unpacks to float32) and of every empty attribute
    (JSON ``null``); None for the rest, which JSON carries as they are."""
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        return None
    if dtype.kind in _NUMBER_KINDS:
        return dtype.newbyteorder("<").str
    return dtype.str if isinstance(value, h5py.Empty) else None


_NUMBER_KINDS = "biufc"
_BOOKKEEPING = frozenset({"CLASS", "NAME"})


def _is_bookkeeping(obj: h5py.Group | h5py.Dataset, name: str, value: Any) -> bool:
    # CLASS and NAME mean "this is a dimension scale called ..." only on dimension scales;
    # elsewhere they are ordinary attributes (e.g. CLASS="IMAGE" of the HDF5 image spec),
    # which kerchunk drops too eagerly.
    is_scale = isinstance(obj, h5py.Dataset) and h5py.h5ds.is_scale(obj.id)
    if name == "CLASS":
        return is_scale or _as_bytes(value) == b"DIMENSION_SCALE"
    return name == "NAME" and is_scale


def _as_bytes(value: Any) -> bytes | None:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return None


def attr_to_json(value: Any, file: h5py.File | None = None) -> Any:
    """One attribute value as h5py reads it → a JSON-able value (see the module rules).

    ``file`` resolves references; without it a reference is an error.
    """
    def hdf5_values(item: Any) -> Any:
        if isinstance(item, h5py.Empty):
            return None
        if isinstance(item, h5py.Reference):
            if file is None:
                raise ValueError("a reference attribute needs the file to resolve it")
            return reference_path(file, item)
        return NotImplemented

    return value_to_json(value, hdf5_values)


def decode_attr_for_compare(encoded: Any, like: Any, file: h5py.File | None = None) -> Any:
    """Rebuild a value shaped and typed like h5py's ``like`` from its JSON form ``encoded``.

    For tests: ``decode_attr_for_compare(zarr_attrs[name], h5_obj.attrs[name], file)`` equals
    h5py's value (NaN-aware, e.g. with ``numpy.testing.assert_array_equal``), except that
    references come back as the path strings they were encoded to.
    """
    if isinstance(like, h5py.Empty):
        if encoded is not None:
            raise ValueError(f"expected null for an empty attribute, got {encoded!r}")
        return like
    if isinstance(like, str):
        return encoded
    if isinstance(like, bytes):
        return _encode_text(encoded, like)
    if isinstance(like, h5py.Reference):
        return encoded
    if isinstance(like, np.ndarray):
        out = np.empty(like.shape, dtype=like.dtype)
        if like.size == 1:
            out.reshape(-1)[0] = decode_attr_for_compare(encoded, like.reshape(-1)[0], file)
            return out
        for i, (item, item_like) in enumerate(zip(encoded, like, strict=True)):
            out[i] = decode_attr_for_compare(item, item_like, file)
        return out
    if isinstance(like, np.generic):
        return _scalar_from_json(encoded, like)
    return encoded


def _scalar_from_json(encoded: Any, like: np.generic) -> Any:
    kind = like.dtype.kind
    if kind == "f":
        return like.dtype.type(float_from_json(encoded))
    if kind == "c":
        return like.dtype.type(complex_from_json(encoded))
    if kind == "S":
        return like.dtype.type(_encode_text(encoded, bytes(like)))
    if kind == "M":
        return np.datetime64(encoded).astype(like.dtype)
    if kind == "m":
        return np.timedelta64(encoded, np.datetime_data(like.dtype)[0])
    if kind == "V" and like.dtype.fields is not None:
        fields = [decode_attr_for_compare(encoded[n], like[n]) for n in like.dtype.names]
        return np.array(tuple(fields), dtype=like.dtype)[()]
    if kind == "V":
        return np.frombuffer(base64.b64decode(encoded), dtype=like.dtype)[0]
    return like.dtype.type(encoded)


def _encode_text(text: str, like: bytes) -> bytes:
    # The encoder chose UTF-8 or Latin-1 by whether the bytes were valid UTF-8; so does this.
    try:
        like.decode("utf-8")
    except UnicodeDecodeError:
        return text.encode("latin-1")
    return text.encode("utf-8")
