"""Zarr v2 object dtypes for variable-length data nested in other types (see the
``refindex.objects`` codec): records with ``|O`` fields, and ``|O`` arrays whose object codec
zarr-python does not know by name. Registered with the others by
:func:`refindex.store.zarr_dtypes.register`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self

import numpy as np
from zarr.core.dtype.common import DataTypeValidationError, DTypeJSON, check_dtype_spec_v2
from zarr.core.dtype.wrapper import ZDType

from refindex.dtype_json import dtype_from_v2_json, dtype_to_v2_json

__all__ = ["ObjectArray", "ObjectStructured"]


def _has_object(spec: object) -> bool:
    """Whether a v2 JSON field list names ``|O`` anywhere (nested records included)."""
    if isinstance(spec, str):
        return spec == "|O"
    return isinstance(spec, list | tuple) and any(_has_object(part) for part in spec)


@dataclass(frozen=True, kw_only=True)
class ObjectStructured(ZDType[np.dtypes.VoidDType, np.void]):
    """A Zarr v2 record dtype with ``|O`` fields (variable-length strings or sequences in a
    record), as refindex's ``refindex.objects`` codec stores them. Only fill value: null."""

    _zarr_v3_name: ClassVar[Literal["refindex.object_structured"]] = "refindex.object_structured"
    dtype_cls = np.dtypes.VoidDType
    dtype: np.dtype

    @classmethod
    def from_native_dtype(cls, dtype: Any) -> Self:
        raise DataTypeValidationError("ObjectStructured is chosen from v2 JSON, not inferred")

    def to_native_dtype(self) -> np.dtypes.VoidDType:
        return self.dtype

    @classmethod
    def _from_json_v2(cls, data: DTypeJSON) -> Self:
        if (
            isinstance(data, dict)
            and set(data) == {"name", "object_codec_id"}
            and isinstance(data["name"], list | tuple)
            and _has_object(data["name"])
        ):
            try:
                return cls(dtype=dtype_from_v2_json(list(data["name"])))
            except (TypeError, ValueError) as e:
                raise DataTypeValidationError(f"invalid record dtype {data['name']!r}") from e
        raise DataTypeValidationError(f"{data!r} is not a record dtype with object fields")

    @classmethod
    def _from_json_v3(cls, data: DTypeJSON) -> Self:
        raise DataTypeValidationError(f"{cls.__name__} exists for Zarr v2 only")

    def to_json(self, zarr_format: int) -> Any:
        if zarr_format == 2:
            return {"name": dtype_to_v2_json(self.dtype), "object_codec_id": None}
        raise ValueError(f"{type(self).__name__} has no Zarr v3 representation")

    def _check_scalar(self, data: object) -> bool:
        return data is None or isinstance(data, np.void)

    def cast_scalar(self, data: object) -> np.void:
        if data is None:
            return self.default_scalar()
        if isinstance(data, np.void) and data.dtype == self.dtype:
            return data
        raise TypeError(f"cannot cast {data!r} to a scalar of {self.dtype}")

    def default_scalar(self) -> np.void:
        # Object fields start as None, as in np.empty.
        return np.empty((), dtype=self.dtype)[()]

    def from_json_scalar(self, data: Any, *, zarr_format: int) -> np.void:
        if data is None:
            return self.default_scalar()
        raise TypeError(f"a record with object fields has no fill value but null, got {data!r}")

    def to_json_scalar(self, data: object, *, zarr_format: int) -> None:
        return None


@dataclass(frozen=True, kw_only=True)
class ObjectArray(ZDType[np.dtypes.ObjectDType, Any]):
    """Zarr v2 ``|O`` whose object codec zarr-python does not know by name (its list is fixed:
    vlen-utf8, vlen-bytes, vlen-array, pickle, json2, msgpack2), such as ``refindex.objects``;
    the codec in ``filters`` decodes the elements. Only fill value: null."""

    _zarr_v3_name: ClassVar[Literal["refindex.object"]] = "refindex.object"
    dtype_cls = np.dtypes.ObjectDType

    @classmethod
    def from_native_dtype(cls, dtype: Any) -> Self:
        raise DataTypeValidationError("ObjectArray is chosen from v2 JSON, not inferred")

    def to_native_dtype(self) -> np.dtypes.ObjectDType:
        return np.dtypes.ObjectDType()

    @classmethod
    def _from_json_v2(cls, data: DTypeJSON) -> Self:
        if check_dtype_spec_v2(data) and data["name"] == "|O" and data["object_codec_id"] is None:
            return cls()
        raise DataTypeValidationError(f"{data!r} is not an object dtype without a known codec")

    @classmethod
    def _from_json_v3(cls, data: DTypeJSON) -> Self:
        raise DataTypeValidationError(f"{cls.__name__} exists for Zarr v2 only")

    def to_json(self, zarr_format: int) -> Any:
        if zarr_format == 2:
            return {"name": "|O", "object_codec_id": None}
        raise ValueError(f"{type(self).__name__} has no Zarr v3 representation")

    def _check_scalar(self, data: object) -> bool:
        return data is None

    def cast_scalar(self, data: object) -> None:
        if data is not None:
            raise TypeError(f"an object array's fill value must be None, got {data!r}")

    def default_scalar(self) -> None:
        return None

    def from_json_scalar(self, data: Any, *, zarr_format: int) -> None:
        return self.cast_scalar(data)

    def to_json_scalar(self, data: object, *, zarr_format: int) -> None:
        return self.cast_scalar(data)
