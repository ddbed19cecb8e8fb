"""Attributes as h5netcdf gives them, from their JSON form and their recorded dtypes.

JSON carries neither a number's width (a float32 ``scale_factor``) nor non-finite floats
(written as ``"NaN"``, ``"Infinity"``) nor empty attributes (a null dataspace, written as
``null``). A scan records the NumPy dtype of each numeric and each empty attribute
(``ArrayNode.attr_dtypes``, ``Index.group_attr_dtypes``); with it the value comes back as
the NumPy scalar or array h5py reads, and an empty attribute as h5netcdf gives it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from refindex.scan.json_values import complex_from_json, float_from_json

__all__ = ["typed_attrs", "typed_value"]


def typed_attrs(attrs: Mapping[str, Any], dtypes: Mapping[str, str]) -> dict[str, Any]:
    """``attrs`` with each attribute that has a recorded dtype (``dtypes``: name -> NumPy
    dtype string) restored to it."""
    return {name: typed_value(value, dtypes[name]) if name in dtypes else value
            for name, value in attrs.items()}


def typed_value(value: Any, dtype: str) -> Any:
    """The attribute ``value`` (its JSON form) as NumPy ``dtype``: a NumPy scalar, or an array
    for several values; ``value`` unchanged when it does not fit ``dtype``."""
    kind = np.dtype(dtype)
    if value is None:
        return _empty(kind)
    try:
        if kind.kind == "c":
            value = _map(complex_from_json, value, leaf=_is_complex_pair)
        elif kind.kind == "f":
            value = _map(float_from_json, value)
        elif kind.kind in "iu" and not _integers(value):
            return value  # a cast would truncate them
        array = np.asarray(value, dtype=kind)
    except (TypeError, ValueError, KeyError, OverflowError):
        return value
    return array[()] if array.ndim == 0 else array


def _empty(dtype: np.dtype) -> Any:
    # h5netcdf: one-character strings read as b"" (which xarray decodes to ""), everything
    # else as an empty array of the attribute's type (h5netcdf issues 94 and 154).
    if dtype.kind == "S" and dtype.itemsize == 1:
        return ""
    return np.array([], dtype=dtype)


def _map(convert, value: Any, leaf=None) -> Any:
    if isinstance(value, list) and not (leaf and leaf(value)):
        return [_map(convert, item, leaf) for item in value]
    return convert(value)


def _integers(value: Any) -> bool:
    if isinstance(value, list):
        return all(_integers(item) for item in value)
    return isinstance(value, int | np.integer)


def _is_complex_pair(value: list) -> bool:
    return len(value) == 2 and all(not isinstance(part, list) for part in value)
