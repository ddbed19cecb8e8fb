"""DAP4 types as NumPy dtypes, and the typed values a DMR++ states in text: attribute values
and fill values, parsed to exactly the value of their type (``Float32`` text to float32)."""

from __future__ import annotations

import numpy as np

# DAP4's atomic types that are fixed-size numbers, and their NumPy types. Byte is DAP2's
# name for UInt8, which DMR++ writers still use.
NUMERIC = {
    "Int8": "i1", "UInt8": "u1", "Byte": "u1", "UByte": "u1",
    "Int16": "i2", "UInt16": "u2", "Int32": "i4", "UInt32": "u4",
    "Int64": "i8", "UInt64": "u8", "Float32": "f4", "Float64": "f8",
}
TEXT = frozenset({"String", "URL", "Url"})
# DAP4 types a variable may have that refindex does not turn into an array here.
OTHER_VARIABLES = frozenset({"Char", "Opaque", "Enum", "Structure", "Sequence"}) | TEXT
VARIABLE_TYPES = frozenset(NUMERIC) | OTHER_VARIABLES


def numeric_dtype(dap_type: str, byte_order: str = "<") -> np.dtype:
    """The NumPy dtype of a numeric DAP4 type in ``byte_order`` (``<`` or ``>``)."""
    return np.dtype(NUMERIC[dap_type]).newbyteorder(byte_order)


def parse_number(text: str, dtype: np.dtype) -> np.generic:
    """One number of ``dtype`` from its text; ValueError when the text is not one, or the
    value does not fit the type (``300`` as an Int8)."""
    text = text.strip()
    if dtype.kind == "f":
        value = float(text)
        with np.errstate(over="ignore"):
            number = np.asarray(value, dtype=np.float64).astype(dtype)[()]
        if np.isinf(number) and not np.isinf(value):
            raise ValueError(f"{text} does not fit {dap_name(dtype)}")
        return number
    value = int(text, 0) if text.lower().startswith(("0x", "-0x")) else int(text)
    info = np.iinfo(dtype)
    if not info.min <= value <= info.max:
        raise ValueError(f"{value} does not fit {dap_name(dtype)}")
    return np.asarray(value, dtype=dtype)[()]


def dap_name(dtype: np.dtype) -> str:
    for name, code in NUMERIC.items():
        if np.dtype(code) == dtype.newbyteorder("="):
            return name
    return str(dtype)
