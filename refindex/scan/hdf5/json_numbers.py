"""Numbers as Zarr writes them in JSON: non-finite floats as strings, complex as [real, imag]."""

from __future__ import annotations

import math

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
