"""Dimension names for xarray: every array needs ``_ARRAY_DIMENSIONS`` of its own rank.

A Zarr store written without xarray (or a kerchunk sidecar of one) has arrays without
``_ARRAY_DIMENSIONS``, and a record can have the wrong length (earlier refindex versions
named only the dataset's own axes of an HDF5 array element type). xarray refuses such
arrays with a KeyError or a ``zip()`` ValueError; here their axes (or the axes a record
leaves ``null``) get ``phony_dim_N`` names instead, as h5netcdf names the axes of HDF5
datasets without dimension scales (refindex.phony_dims): within a group, arrays share a
phony dimension per length.
"""

from __future__ import annotations

import dataclasses

from refindex.index import ArrayNode, Index
from refindex.phony_dims import Axis, first_number, name_group_axes, parents_first

DIMENSIONS = "_ARRAY_DIMENSIONS"
CONSOLIDATED = ".zmetadata"


def valid_dimensions(node: ArrayNode) -> list[str] | None:
    """The array's dimension names when its record has one name per axis, else None."""
    names = recorded_axes(node)
    return names if all(name is not None for name in names) else None


def recorded_axes(node: ArrayNode) -> list[str | None]:
    """Per axis, the name the array's record gives it: None for an axis it leaves unnamed
    (``null``, as Zarr v3 ``dimension_names`` may), and for all when the record is missing
    or not a list of one name per axis."""
    names = node.attrs.get(DIMENSIONS)
    rank = len(node.zarray["shape"])
    if not isinstance(names, list) or len(names) != rank:
        return [None] * rank
    return [name if isinstance(name, str) else None for name in names]


def with_dimensions(index: Index) -> Index:
    """``index`` itself when every array has valid dimension names; else a copy (sharing the
    chunk tables) whose arrays without them get phony names."""
    missing = [path for path, node in index.arrays.items() if valid_dimensions(node) is None]
    if not missing:
        return index
    taken = frozenset(name for node in index.arrays.values() for name in recorded_axes(node)
                      if name is not None)
    by_group: dict[str, list[str]] = {}
    for path in missing:
        by_group.setdefault(path.rpartition("/")[0], []).append(path)
    arrays = dict(index.arrays)
    next_number: dict[str, int] = {}
    for group in parents_first(by_group):
        paths = by_group[group]
        axes: list[list[Axis]] = [
            list(zip(recorded_axes(index.arrays[p]), index.arrays[p].zarray["shape"],
                     strict=True)) for p in paths]
        names, next_number[group] = name_group_axes(axes, first_number(group, next_number),
                                                    taken=taken)
        for path, dims in zip(paths, names, strict=True):
            node = index.arrays[path]
            arrays[path] = dataclasses.replace(node, attrs={**node.attrs, DIMENSIONS: list(dims)})
    # A consolidated .zmetadata the sidecar carries (kerchunk copies a Zarr store's) would be
    # served instead of the names: the view consolidates its own.
    extra = {key: ref for key, ref in index.extra.items() if key != CONSOLIDATED}
    return dataclasses.replace(index, arrays=arrays, extra=extra)
