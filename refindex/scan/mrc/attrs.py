"""The MRC header as group attributes: every field (``mrc_header``), the voxel size and origin
in ångström, the labels as text, the extended header's type and size, the byte order, and
OME-Zarr ``multiscales`` whose ``coordinateTransformations`` scale each axis by the voxel
size (what OME-Zarr viewers read to place the data)."""

from __future__ import annotations

from typing import Any

import numpy as np

from refindex.scan.json_values import decode_text, float_to_json
from refindex.scan.mrc.header import Header

_INT_FIELDS = ("nx", "ny", "nz", "mode", "nxstart", "nystart", "nzstart", "mx", "my", "mz",
               "mapc", "mapr", "maps", "ispg", "nsymbt", "nversion", "nlabl")
_FLOAT_FIELDS = ("dmin", "dmax", "dmean", "rms")
_XYZ_FIELDS = ("cella", "cellb", "origin")
_AXIS_UNITS = {"x": "angstrom", "y": "angstrom", "z": "angstrom"}


def group_attrs(header: Header, dims: tuple[str, ...], array_path: str) -> dict[str, Any]:
    """The root group's attributes for ``header``, whose data is array ``array_path`` with
    dimensions ``dims``."""
    voxel = voxel_size(header)
    attrs: dict[str, Any] = {
        "mrc_header": _header_json(header),
        "voxel_size": {axis: float_to_json(size) for axis, size in zip("xyz", voxel, strict=True)},
        "origin": dict(zip("xyz", _xyz(header, "origin"), strict=True)),
        "labels": labels(header),
        "extended_header_type": _text(header["exttyp"]) if header.integer("nsymbt") else "",
        "extended_header_bytes": header.integer("nsymbt"),
        "byte_order": "little" if header.byte_order == "<" else "big",
    }
    if all(np.isfinite(size) and size > 0 for size in voxel):
        attrs["multiscales"] = _multiscales(dims, dict(zip("xyz", voxel, strict=True)), array_path)
    return attrs


def voxel_size(header: Header) -> tuple[float, float, float]:
    """The voxel size (x, y, z) as mrcfile computes it: ``cella / (mx, my, mz)`` rounded to
    float32 (infinite or NaN when a sampling is 0, as mrcfile gives it)."""
    cella = header["cella"]
    with np.errstate(divide="ignore", invalid="ignore"):
        return tuple(float(np.float32(np.float64(cella[i]) / np.float64(header.integer(m))))
                     for i, m in enumerate(("mx", "my", "mz")))


def labels(header: Header) -> list[str]:
    """The first ``nlabl`` labels as text, trailing spaces and NULs removed."""
    return [_text(label) for label in header["label"][:header.integer("nlabl")]]


def _multiscales(dims: tuple[str, ...], voxel: dict[str, float],
                 array_path: str) -> list[dict[str, Any]]:
    """One OME-Zarr 0.4 multiscale of one level: spatial axes in ångström scaled by the voxel
    size; a stack axis (images or volumes) has no type and scale 1."""
    axes = [{"name": d, "type": "space", "unit": _AXIS_UNITS[d]} if d in _AXIS_UNITS
            else {"name": d} for d in dims]
    scale = [voxel.get(d, 1.0) for d in dims]
    return [{
        "version": "0.4",
        "axes": axes,
        "datasets": [{"path": array_path,
                      "coordinateTransformations": [{"type": "scale", "scale": scale}]}],
    }]


def _header_json(header: Header) -> dict[str, Any]:
    values: dict[str, Any] = {name: header.integer(name) for name in _INT_FIELDS}
    values.update({name: float_to_json(header[name]) for name in _FLOAT_FIELDS})
    values.update({name: _xyz(header, name) for name in _XYZ_FIELDS})
    values["exttyp"] = _text(header["exttyp"])
    values["map"] = decode_text(bytes(header["map"]))
    values["machst"] = [int(byte) for byte in header["machst"]]
    return values


def _xyz(header: Header, name: str) -> list[float | str]:
    return [float_to_json(value) for value in header[name]]


def _text(raw: bytes) -> str:
    return decode_text(bytes(raw)).rstrip(" \0")
