"""Values in the JSON forms every scanner writes: numbers as Zarr writes them (non-finite
floats as strings, complex as [real, imag]), text of bytes, Zarr v2 fill values, and
attribute values (HDF5 and NetCDF3 alike; HDF5 adds its references and empty values)."""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from typing import Any

import numpy as np

# Zarr's JSON (v2 fill values, v3 throughout) spells non-finite floats as strings, because
# strict JSON has no NaN or Infinity and many parsers reject the bare tokens.
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def float_to_json(value: float) -> float | str:
    """A float as JSON: itself when finite, else ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``."""
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def float_from_json(value: float | int | str) -> float:
    """The inverse of :func:`float_to_json`."""
    if isinstance(value, str):
        return _NON_FINITE[value]
    return float(value)


def complex_to_json(value: complex) -> list[float | str]:
    """A complex number as ``[real, imag]``, each part as :func:`float_to_json` writes it."""
    value = complex(value)
    return [float_to_json(value.real), float_to_json(value.imag)]


def complex_from_json(value: list[float | str]) -> complex:
    """The inverse of :func:`complex_to_json`."""
    real, imag = value
    return complex(float_from_json(real), float_from_json(imag))


def decode_text(raw: bytes) -> str:
    """Bytes of a stored string as text: UTF-8, or Latin-1 when not valid UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _number_to_json(value: Any, kind: str) -> Any:
    """A boolean or number of NumPy ``kind`` as JSON, or ``NotImplemented`` for other kinds."""
    if kind == "b":
        return bool(value)
    if kind in "iu":
        return int(value)
    if kind == "f":
        return float_to_json(value)
    if kind == "c":
        return complex_to_json(value)
    return NotImplemented


def fill_to_json(fill: np.ndarray) -> object:
    """A 0-d fill value array as Zarr v2 JSON: numbers as numbers (non-finite as strings),
    complex as ``[real, imag]``, bytes and records as base64 of the whole item, datetimes as
    their int64 count."""
    value = fill[()]
    kind = fill.dtype.kind
    if (number := _number_to_json(value, kind)) is not NotImplemented:
        return number
    if kind in "mM":
        return int(value.view("i8"))
    if kind in "SV":
        # The whole item, trailing NULs included (a NumPy bytes scalar would drop them).
        return base64.b64encode(fill.tobytes()).decode("ascii")
    raise ValueError(f"no Zarr v2 fill value for {value.dtype}")


Special = Callable[[Any], Any]
"""A container's own values (HDF5 references, empty values) to JSON, or ``NotImplemented``."""


def value_to_json(value: Any, special: Special | None = None) -> Any:
    """An attribute value as read (NumPy arrays and scalars, bytes, text, numbers) as JSON:
    one element as itself, several as a list, bytes as text, records as objects; ``special``
    is asked first at every level."""
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(-1)[0]
    if special is not None and (converted := special(value)) is not NotImplemented:
        return converted
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return decode_text(value)
    if isinstance(value, np.ndarray | list | tuple):
        return [value_to_json(item, special) for item in value]
    if isinstance(value, np.generic):
        return _scalar_to_json(value, special)
    if isinstance(value, bool | int | float):
        return _scalar_to_json(np.asarray(value)[()], special)
    raise TypeError(f"no JSON form for attribute value {value!r} of type {type(value)}")


def _scalar_to_json(value: np.generic, special: Special | None) -> Any:
    kind = value.dtype.kind
    if (number := _number_to_json(value, kind)) is not NotImplemented:
        return number
    if kind == "S":
        return decode_text(bytes(value))
    if kind == "U":
        return str(value)
    if kind == "M":
        return np.datetime_as_string(value)
    if kind == "m":
        return int(value.view("i8"))
    if kind == "V" and value.dtype.fields is not None:
        return {name: value_to_json(value[name], special) for name in value.dtype.names}
    if kind == "V":
        return base64.b64encode(value.tobytes()).decode("ascii")
    return value_to_json(value.item(), special)
