"""Build the Index of a NetCDF3 file from its header: one Zarr v2 array per variable, with
``_ARRAY_DIMENSIONS`` naming its dimensions (as xarray's Zarr backend expects) and the global
attributes on the root group. Only the header is read."""

from __future__ import annotations

from typing import Any

from refindex.errors import ContainerError, UnsupportedFeatureError
from refindex.index import ArrayNode, Index
from refindex.io import ReadEngine
from refindex.scan.left_out import leave_out
from refindex.scan.netcdf3.header import Attribute, Header, Variable, read_header
from refindex.scan.netcdf3.layout import Shapes, dimension_shapes, variable_layout
from refindex.scan.netcdf3.types import (
    attribute_dtype,
    attribute_to_json,
    fill_value_json,
    zarr_dtype,
)
from refindex.scan.options import ScanOptions
from refindex.scan.protocol import Container, Progress


def scan_netcdf3(container: Container, index: Index, engine: ReadEngine, options: ScanOptions,
                 progress: Progress | None = None) -> list[str]:
    """Add the variables of the NetCDF3 file in ``container`` (``options.file_size`` bytes) to
    ``index`` (see ``ContainerScanner``); returns notes on what was skipped (none so far).
    Variables whose names Zarr cannot use go to ``index.left_out``."""
    fileobj, source_id, name = container.fileobj, container.source_id, container.url
    if options.file_size is None:
        raise ValueError("scan_netcdf3 needs options.file_size")
    header = read_header(fileobj, options.file_size, name)
    shapes = dimension_shapes(header, options.file_size, name)
    index.groups[""] = _attributes_json(header.attributes)
    if dtypes := _attribute_dtypes(header.attributes):
        index.group_attr_dtypes[""] = dtypes
    skipped: list[str] = []
    seen: set[str] = set()
    for variable in header.variables:
        problem = _unusable_name(variable.name)
        if problem:
            leave_out(index, variable.name, UnsupportedFeatureError(name, variable.name, problem),
                      options)
            continue
        if variable.name in seen:
            raise ContainerError(f"{name}: NetCDF3 header names variable {variable.name!r} "
                                 "twice; the header is corrupt")
        seen.add(variable.name)
        node = _array(variable, header, shapes, source_id, options.file_size, name)
        index.arrays[variable.name] = node
        if progress:
            progress(variable.name, len(node.chunks))
    return skipped


def _array(variable: Variable, header: Header, shapes: Shapes, source_id: int,
           file_size: int, name: str) -> ArrayNode:
    layout = variable_layout(variable, shapes, source_id, file_size, name)
    attrs = _attributes_json(variable.attributes)
    attrs["_ARRAY_DIMENSIONS"] = [header.dimensions[d].name for d in variable.dimids]
    fill_attr = next((a.values for a in variable.attributes if a.name == "_FillValue"), None)
    zarray = {
        "zarr_format": 2,
        "shape": list(layout.shape),
        "chunks": list(layout.chunk_shape),
        "dtype": zarr_dtype(variable.nc_type),
        "compressor": None,
        "filters": None,
        "fill_value": fill_value_json(variable.nc_type, fill_attr),
        "order": "C",
        "dimension_separator": ".",
    }
    return ArrayNode(variable.name, zarray, attrs, layout.table,
                     _attribute_dtypes(variable.attributes))


def _attributes_json(attributes: tuple[Attribute, ...]) -> dict[str, Any]:
    return {a.name: attribute_to_json(a.values) for a in attributes}


def _attribute_dtypes(attributes: tuple[Attribute, ...]) -> dict[str, str]:
    return {a.name: dtype for a in attributes if (dtype := attribute_dtype(a.values)) is not None}


def _unusable_name(name: str) -> str | None:
    """Why ``name`` cannot be a Zarr array path, or None. NetCDF forbids '/' in names, but
    old writers did not check; a leading '.' would collide with Zarr's metadata keys."""
    if "/" in name:
        return "a variable name with '/', which Zarr would read as a group"
    if name.startswith("."):
        return "a variable name starting with '.', which Zarr reserves for metadata keys"
    return None
