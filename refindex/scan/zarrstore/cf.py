"""Zarr arrays' missing-value markers in refindex's convention, so that xarray reads an
archived store as it reads the store itself.

refindex's xarray backend takes an array's ``_FillValue`` attribute, a plain JSON value, as
the missing-value marker (as netCDF does), never the Zarr ``fill_value``. xarray reads the
``fill_value`` of a Zarr v2 array as the marker, and the ``_FillValue`` attribute of a v3
array, which it writes encoded (a float as the base64 of a little-endian double). So a v2
array gets the attribute, and a v3 array's attribute is decoded.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct

_JSON_FLOATS = {math.inf: "Infinity", -math.inf: "-Infinity"}


def v2_marker(attrs: dict, zarray: dict) -> dict:
    """``attrs`` with the v2 ``fill_value`` as ``_FillValue``, as xarray reads it."""
    if zarray.get("fill_value") is None:
        return attrs
    return {**attrs, "_FillValue": zarray["fill_value"]}


def v3_marker(attrs: dict, dtype_kind: str) -> dict:
    """``attrs`` with a float or complex ``_FillValue`` that xarray encoded decoded."""
    stored = attrs.get("_FillValue")
    if dtype_kind == "f" and isinstance(stored, str):
        decoded = _double(stored)
    elif dtype_kind == "c" and isinstance(stored, list) and len(stored) == 2:
        parts = [_double(part) if isinstance(part, str) else None for part in stored]
        decoded = None if None in parts else parts
    else:
        return attrs
    return attrs if decoded is None else {**attrs, "_FillValue": decoded}


def _double(text: str) -> float | str | None:
    """The JSON value of a base64-encoded little-endian double, None if ``text`` is not one
    (then it is kept as it is)."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 8:
        return None
    value = struct.unpack("<d", raw)[0]
    if math.isnan(value):
        return "NaN"
    return _JSON_FLOATS.get(value, value)
