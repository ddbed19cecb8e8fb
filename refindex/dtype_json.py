"""NumPy dtypes in the form a Zarr v2 ``.zarray`` states them (``"<f8"``, or a field list for
records), as scanners write them into the index and sidecars and readers turn them back.

Pure NumPy: scanners use it without importing zarr (``store/zarr_dtypes.py`` teaches zarr the
dtypes zarr-python cannot parse from these forms).
"""

from __future__ import annotations

import numpy as np

__all__ = ["dtype_from_v2_json", "dtype_to_v2_json", "packed"]


def dtype_from_v2_json(name: str | list) -> np.dtype:
    """The NumPy dtype a Zarr v2 ``.zarray`` ``dtype`` value (string or field list) describes."""
    if isinstance(name, str):
        return np.dtype(name)
    return np.dtype([_field_from_json(field) for field in name])


def _field_from_json(field: list) -> tuple:
    if not isinstance(field, list | tuple) or len(field) not in (2, 3):
        raise ValueError(
            f"a structured field must be [name, dtype] or [name, dtype, shape]: {field}"
        )
    name, sub = field[0], field[1]
    sub_dtype = dtype_from_v2_json(sub) if not isinstance(sub, str) else sub
    if len(field) == 3:
        return (name, sub_dtype, tuple(field[2]))
    return (name, sub_dtype)


def dtype_to_v2_json(dtype: np.dtype) -> str | list:
    """The Zarr v2 ``.zarray`` ``dtype`` value for a NumPy dtype (``descr`` with lists, not tuples).

    Structured dtypes must be packed (no padding, fields in offset order): Zarr v2 cannot say
    where a field starts, only its order.
    """
    if dtype.fields is None:
        return dtype.str
    if not _is_packed(dtype):
        raise ValueError(f"structured dtype {dtype} has padding; Zarr v2 cannot describe it")
    return [_field_to_json(name, dtype.fields[name][0]) for name in dtype.names]


def _field_to_json(name: str, dtype: np.dtype) -> list:
    # Field by field rather than through ``descr``, which shows h5py's dtype metadata
    # (``('|O', {'vlen': str})``) instead of the type.
    shape: tuple = ()
    if dtype.subdtype is not None:
        dtype, shape = dtype.subdtype
    out = [name, dtype_to_v2_json(dtype)]
    if shape:
        out.append(list(shape))
    return out


def packed(dtype: np.dtype) -> np.dtype:
    """``dtype`` with the padding between (nested) record fields removed."""
    if dtype.subdtype is not None:
        base, shape = dtype.subdtype
        return np.dtype((packed(base), shape))
    if dtype.fields is None:
        return dtype
    return np.dtype([(name, packed(dtype.fields[name][0])) for name in dtype.names])


def _is_packed(dtype: np.dtype) -> bool:
    """True when every (nested) field follows the previous one with no gap or overlap."""
    if dtype.subdtype is not None:
        return _is_packed(dtype.subdtype[0])
    if dtype.fields is None:
        return True
    position = 0
    for name in dtype.names:
        field_dtype, offset = dtype.fields[name][:2]
        if offset != position or not _is_packed(field_dtype):
            return False
        position += field_dtype.itemsize
    return position == dtype.itemsize
