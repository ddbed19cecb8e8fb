"""DAP4 ``Attribute`` elements → ``.zattrs`` values and the dtypes recorded beside them, in
the forms the HDF5 scanner gives the same attributes (one value bare, several as a list,
numbers of their exact type, bookkeeping attributes dropped)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import numpy as np

from refindex.errors import ContainerError
from refindex.scan.dmrpp.document import dap
from refindex.scan.dmrpp.types import NUMERIC, TEXT, parse_number
from refindex.scan.hdf5.attrs import HIDDEN_ATTRS
from refindex.scan.json_values import value_to_json

# What netCDF-4 and the HDF5 dimension-scale API write on dimension scales for their own
# bookkeeping (the HDF5 scanner drops them there too).
_SCALE_BOOKKEEPING = frozenset({"CLASS", "NAME"})


def encode_attributes(element: ET.Element, where: str, is_scale: bool = False
                      ) -> tuple[dict[str, Any], dict[str, str]]:
    """The attributes directly under ``element`` as JSON values, and the NumPy dtype of each
    numeric one. ``where`` names the document and the object for errors."""
    values: dict[str, Any] = {}
    dtypes: dict[str, str] = {}
    for attribute in element.findall(dap("Attribute")):
        name = attribute.get("name")
        if name is None:
            raise ContainerError(f"{where}: an Attribute without a name")
        if name in HIDDEN_ATTRS or (is_scale and name in _SCALE_BOOKKEEPING):
            continue
        value, dtype = _attribute(attribute, f"{where}: attribute {name!r}")
        values[name] = value
        if dtype is not None:
            dtypes[name] = dtype
    return values, dtypes


def _attribute(attribute: ET.Element, where: str) -> tuple[Any, str | None]:
    kind = attribute.get("type", "")
    if kind == "Container":
        nested, _ = encode_attributes(attribute, where)
        return nested, None
    texts = [_value_text(v) for v in attribute.findall(dap("Value"))]
    if kind in TEXT:
        return (texts[0] if len(texts) == 1 else texts), None
    if kind not in NUMERIC:
        raise ContainerError(f"{where}: attribute type {kind!r} is not a DAP4 atomic type")
    dtype = np.dtype(NUMERIC[kind])
    try:
        numbers = np.array([parse_number(t, dtype) for t in texts], dtype=dtype)
    except ValueError as exc:
        raise ContainerError(f"{where}: value is not a {kind} ({exc})") from None
    return value_to_json(numbers), dtype.newbyteorder("<").str


def _value_text(value: ET.Element) -> str:
    # DAP4 allows the value as the element's text or as its ``value`` attribute.
    return value.get("value", value.text or "")
