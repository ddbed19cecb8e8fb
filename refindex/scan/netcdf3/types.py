"""NetCDF3 external types: their big-endian NumPy dtypes, default fill values, and attribute
values as ``.zattrs`` JSON (in the form netCDF4-python shows them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from refindex.scan.json_values import decode_text, fill_to_json, value_to_json

NC_CHAR = 2


@dataclass(frozen=True)
class NcType:
    """One external type: its name, NumPy dtype as stored (big-endian) and the default fill
    value netCDF-C writes into never-written data (``NC_FILL_*`` of netcdf.h)."""

    name: str
    dtype: np.dtype
    default_fill: int | float | bytes
    cdf5_only: bool = False


NC_TYPES: dict[int, NcType] = {
    1: NcType("byte", np.dtype("i1"), -127),
    NC_CHAR: NcType("char", np.dtype("S1"), b"\0"),
    3: NcType("short", np.dtype(">i2"), -32767),
    4: NcType("int", np.dtype(">i4"), -2147483647),
    5: NcType("float", np.dtype(">f4"), 9.9692099683868690e36),
    6: NcType("double", np.dtype(">f8"), 9.9692099683868690e36),
    7: NcType("ubyte", np.dtype("u1"), 255, cdf5_only=True),
    8: NcType("ushort", np.dtype(">u2"), 65535, cdf5_only=True),
    9: NcType("uint", np.dtype(">u4"), 4294967295, cdf5_only=True),
    10: NcType("int64", np.dtype(">i8"), -9223372036854775806, cdf5_only=True),
    11: NcType("uint64", np.dtype(">u8"), 18446744073709551614, cdf5_only=True),
}


def zarr_dtype(nc_type: NcType) -> str:
    """The ``.zarray`` dtype of a variable: the stored big-endian type (``">i2"``, ``"|S1"``)."""
    return nc_type.dtype.str


def attribute_to_json(values: np.ndarray) -> Any:
    """An attribute's values → JSON, as netCDF4-python shows them: text for char attributes
    (UTF-8, else Latin-1 so no byte is lost; NULs removed, as netCDF4-python removes them),
    a number for one value, a list for several."""
    if values.dtype.kind == "S":
        return decode_text(values.tobytes()).replace("\0", "")
    return value_to_json(values)


def attribute_dtype(values: np.ndarray) -> str | None:
    """The NumPy dtype (little-endian spelling) of a numeric attribute, else None: JSON
    carries neither a number's width nor non-finite floats (spelled as strings), and CF
    decoding depends on the type (a float32 ``scale_factor`` unpacks int16 data to
    float32); readers give the value back as netCDF4 reads it."""
    dtype = values.dtype
    return dtype.newbyteorder("<").str if dtype.kind in "iuf" else None


def fill_value_json(nc_type: NcType, fill_attr: np.ndarray | None) -> object:
    """The ``.zarray`` fill value: the ``_FillValue`` attribute when the variable has a usable
    one, else the type's default fill (what netCDF-C writes into never-written data). Null
    when the fill is all zero bytes, as the HDF5 scanner writes it for NetCDF4 files."""
    fill = np.asarray(nc_type.default_fill, dtype=nc_type.dtype)
    if fill_attr is not None and fill_attr.size >= 1:
        candidate = fill_attr.reshape(-1)[:1]
        if candidate.dtype == nc_type.dtype:
            fill = candidate.reshape(())
    if not fill.tobytes().strip(b"\0"):
        return None
    return fill_to_json(fill)
