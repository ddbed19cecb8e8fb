"""Zarr v2 data types that zarr-python 3.1 cannot read yet, registered with its dtype registry.

HDF5 files routinely hold two kinds of data that Zarr v2 expresses but zarr-python 3.1 cannot
parse from a v2 ``.zarray``:

* ``NestedStructured`` — structured (record) dtypes whose fields carry a subarray shape
  (``["b", "<f8", [2]]``, an HDF5 array inside a compound) or are themselves records (nested
  HDF5 compounds). zarr's own ``Structured`` only accepts flat ``[name, "type"]`` pairs.
* ``VariableLengthArray`` — ``|O`` arrays whose object codec is numcodecs ``vlen-array``
  (ragged 1-D sequences, as HDF5 vlen sequences are).
* ``ObjectStructured`` and ``ObjectArray`` (in refindex.store.zarr_object_dtypes) — records with
  ``|O`` fields, and ``|O`` arrays whose object codec zarr does not know by name: HDF5
  compounds with variable-length members and sequences of records, strings or sequences, as
  the ``refindex.objects`` codec stores them.
* ``LongDouble`` — NumPy's ``longdouble`` (``<f16`` on x86-64 Linux: the x87 80-bit format in
  16 bytes), as HDF5 ``H5T_NATIVE_LDOUBLE`` stores it; only where NumPy's long double is wider
  than float64 (elsewhere ``<f16`` names no NumPy type and such arrays cannot be read).

They are read-side helpers: all but ``LongDouble`` (which no zarr type claims) are found from
v2 JSON, never inferred from a NumPy dtype, so they cannot collide with zarr's own types when
zarr creates arrays from NumPy dtypes.
Call :func:`register` (importing ``refindex.store`` does) or rely on the ``zarr.data_type``
entry point.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self

import numpy as np
from zarr.core.dtype import data_type_registry
from zarr.core.dtype.common import (
    DataTypeValidationError,
    DTypeJSON,
    HasItemSize,
    HasObjectCodec,
    check_dtype_spec_v2,
)
from zarr.core.dtype.npy.float import BaseFloat
from zarr.core.dtype.wrapper import ZDType

from refindex.dtype_json import dtype_from_v2_json, dtype_to_v2_json

__all__ = ["LongDouble", "NestedStructured", "VariableLengthArray", "register"]


def _needs_nested(dtype: np.dtype) -> bool:
    """True when a record dtype has a subarray or record field, which ``Structured`` can't read."""
    if dtype.fields is None:
        return False
    for field_dtype, *_ in dtype.fields.values():
        if field_dtype.subdtype is not None or field_dtype.fields is not None:
            return True
    return False


@dataclass(frozen=True, kw_only=True)
class NestedStructured(ZDType[np.dtypes.VoidDType, np.void], HasItemSize):
    """A Zarr v2 record dtype with subarray or nested-record fields; scalars are ``np.void``.

    Fill values are base64 of the record's bytes, as the Zarr v2 spec says for structured types.
    """

    _zarr_v3_name: ClassVar[Literal["refindex.nested_structured"]] = "refindex.nested_structured"
    dtype_cls = np.dtypes.VoidDType
    dtype: np.dtype

    @classmethod
    def from_native_dtype(cls, dtype: Any) -> Self:
        # Never inferred: zarr's own ``Structured`` also claims these NumPy dtypes, and two
        # claimants make zarr refuse to create such arrays at all. Construct explicitly with
        # ``NestedStructured(dtype=...)`` to write them.
        raise DataTypeValidationError("NestedStructured is chosen from v2 JSON, not inferred")

    def to_native_dtype(self) -> np.dtypes.VoidDType:
        return self.dtype

    @classmethod
    def _from_json_v2(cls, data: DTypeJSON) -> Self:
        # zarr's own v2 spec check rejects 3-element (subarray) fields, so check by hand.
        if (
            isinstance(data, dict)
            and set(data) == {"name", "object_codec_id"}
            and isinstance(data["name"], list | tuple)
            and data["object_codec_id"] is None
        ):
            try:
                dtype = dtype_from_v2_json(list(data["name"]))
            except (TypeError, ValueError) as e:
                raise DataTypeValidationError(f"invalid structured dtype {data['name']!r}") from e
            if _needs_nested(dtype) and not dtype.hasobject:
                return cls(dtype=dtype)
        raise DataTypeValidationError(f"{data!r} is not a nested structured Zarr v2 dtype")

    @classmethod
    def _from_json_v3(cls, data: DTypeJSON) -> Self:
        raise DataTypeValidationError(f"{cls.__name__} exists for Zarr v2 only")

    def to_json(self, zarr_format: int) -> Any:
        if zarr_format == 2:
            return {"name": dtype_to_v2_json(self.dtype), "object_codec_id": None}
        raise ValueError(f"{type(self).__name__} has no Zarr v3 representation")

    def _check_scalar(self, data: object) -> bool:
        return isinstance(data, bytes | np.void | tuple | list) or data == 0

    def cast_scalar(self, data: object) -> np.void:
        if isinstance(data, bytes):
            return np.frombuffer(data, dtype=self.dtype)[0]
        if isinstance(data, np.void | tuple | list):
            return np.array(tuple(data) if isinstance(data, list) else data, dtype=self.dtype)[()]
        if data == 0:
            return self.default_scalar()
        raise TypeError(f"cannot cast {data!r} to a scalar of {self.dtype}")

    def default_scalar(self) -> np.void:
        return np.zeros((), dtype=self.dtype)[()]

    def from_json_scalar(self, data: Any, *, zarr_format: int) -> np.void:
        if isinstance(data, str):
            return self.cast_scalar(base64.b64decode(data))
        raise TypeError(f"a structured fill value must be a base64 string, got {data!r}")

    def to_json_scalar(self, data: object, *, zarr_format: int) -> str:
        return base64.b64encode(self.cast_scalar(data).tobytes()).decode("ascii")

    @property
    def item_size(self) -> int:
        """Bytes per record."""
        return self.dtype.itemsize


@dataclass(frozen=True, kw_only=True)
class VariableLengthArray(ZDType[np.dtypes.ObjectDType, Any], HasObjectCodec):
    """Zarr v2 ``|O`` with the numcodecs ``vlen-array`` codec: each element a 1-D NumPy array.

    The element dtype lives in the codec's configuration, not in the data type, so this type
    cannot know it. The only fill value is ``null``: absent elements read as ``None``, as in
    zarr-python 2.
    """

    _zarr_v3_name: ClassVar[Literal["refindex.vlen_array"]] = "refindex.vlen_array"
    dtype_cls = np.dtypes.ObjectDType
    object_codec_id: ClassVar[Literal["vlen-array"]] = "vlen-array"

    @classmethod
    def from_native_dtype(cls, dtype: Any) -> Self:
        # NumPy "O" is ambiguous (strings, bytes, sequences); zarr refuses to infer it and so do we.
        raise DataTypeValidationError("vlen-array must be chosen explicitly, not inferred from 'O'")

    def to_native_dtype(self) -> np.dtypes.ObjectDType:
        return np.dtypes.ObjectDType()

    @classmethod
    def _from_json_v2(cls, data: DTypeJSON) -> Self:
        if (
            check_dtype_spec_v2(data)
            and data["name"] == "|O"
            and data["object_codec_id"] == cls.object_codec_id
        ):
            return cls()
        raise DataTypeValidationError(f"{data!r} is not a vlen-array Zarr v2 dtype")

    @classmethod
    def _from_json_v3(cls, data: DTypeJSON) -> Self:
        raise DataTypeValidationError(f"{cls.__name__} exists for Zarr v2 only")

    def to_json(self, zarr_format: int) -> Any:
        if zarr_format == 2:
            return {"name": "|O", "object_codec_id": self.object_codec_id}
        raise ValueError(f"{type(self).__name__} has no Zarr v3 representation")

    def _check_scalar(self, data: object) -> bool:
        return data is None

    def cast_scalar(self, data: object) -> None:
        # zarr fills absent chunks with np.full, which would store a sequence fill value as a
        # nested array rather than as each element, so only "no fill" (None) is supported.
        if data is not None:
            raise TypeError(f"a vlen-array fill value must be None, got {data!r}")

    def default_scalar(self) -> None:
        return None

    def from_json_scalar(self, data: Any, *, zarr_format: int) -> None:
        return self.cast_scalar(data)

    def to_json_scalar(self, data: object, *, zarr_format: int) -> None:
        return self.cast_scalar(data)


_LONG_DOUBLE = np.dtype(np.longdouble)


@dataclass(frozen=True, kw_only=True)
class LongDouble(BaseFloat[np.dtypes.LongDoubleDType, np.longdouble]):
    """NumPy ``longdouble`` where it is wider than float64 (``<f16`` / ``>f16`` on x86-64).

    JSON fill values are float64 numbers (or ``"NaN"``, ``"Infinity"``...), so only fills a
    float64 holds exactly can be stated; refindex's scanner inlines arrays with other fills.
    """

    dtype_cls = np.dtypes.LongDoubleDType
    _zarr_v3_name: ClassVar[Literal["refindex.longdouble"]] = "refindex.longdouble"
    _zarr_v2_names: ClassVar[tuple[str, ...]] = (
        _LONG_DOUBLE.newbyteorder(">").str,
        _LONG_DOUBLE.newbyteorder("<").str,
    )

    @property
    def item_size(self) -> int:
        """Bytes per value (padding included)."""
        return _LONG_DOUBLE.itemsize


def _extra_types() -> tuple[type[ZDType], ...]:
    from refindex.store.zarr_object_dtypes import ObjectArray, ObjectStructured

    types: tuple[type[ZDType], ...] = (NestedStructured, VariableLengthArray, ObjectStructured,
                                       ObjectArray)
    return (*types, LongDouble) if _LONG_DOUBLE.itemsize > 8 else types


def register() -> None:
    """Register the extra data types with zarr's registry; safe to call any number of times."""
    # Registered directly as well as by entry point: zarr 3.1 collects ``zarr.data_type`` entry
    # points but never loads them. Order does not matter: ``Structured`` rejects every field
    # list ``NestedStructured`` accepts (it only takes flat ``[name, "type"]`` pairs).
    for cls in _extra_types():
        data_type_registry.register(cls._zarr_v3_name, cls)
