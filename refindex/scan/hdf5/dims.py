"""Dimension names of HDF5 datasets: HDF5 dimension scales and NetCDF4 dimensions, as
``_ARRAY_DIMENSIONS``; axes without a scale get phony names, as h5netcdf gives them
(refindex.phony_dims)."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

import h5py
from h5py import h5ds

from refindex.index import ArrayNode
from refindex.phony_dims import Axis, first_number, name_group_axes, parents_first

# netCDF-4 writes a dimension that has no variable as a dataset with this NAME attribute.
NETCDF_DIMENSION_ONLY = b"This is a netCDF dimension but not a netCDF variable"
NETCDF_NON_COORD_PREFIX = "_nc4_non_coord_"
DIMENSIONS = "_ARRAY_DIMENSIONS"


def is_dimension_only(dset: h5py.Dataset) -> bool:
    """Whether ``dset`` is netCDF-4's placeholder for a dimension without a variable."""
    if not h5ds.is_scale(dset.id):
        return False
    name = dset.attrs.get("NAME", b"")
    return isinstance(name, bytes) and name.startswith(NETCDF_DIMENSION_ONLY)


def variable_name(name: str) -> str:
    """The name readers know a dataset by (netCDF-4 hides a prefix on some variables)."""
    return name.removeprefix(NETCDF_NON_COORD_PREFIX)


@dataclass
class _Group:
    scales: list[tuple[str, int]] = field(default_factory=list)
    arrays: dict[str, list[Axis]] = field(default_factory=dict)


class DimensionNamer:
    """Names each axis of each dataset of one scanned file.

    The scan :meth:`add` s every dataset of a group, groups parents first; :meth:`finish`
    then names the axes: phony names depend on the whole group (its dimension scales and
    every dataset in it) and on the groups above it.
    """

    def __init__(self) -> None:
        self._groups: dict[str, _Group] = {}

    def add(self, dset: h5py.Dataset, path: str, group_path: str) -> None:
        """Note ``dset`` (the array at ``path`` in the group at ``group_path``)."""
        group = self._groups.setdefault(group_path, _Group())
        if dset.shape is None:  # a null dataspace: refindex serves it as shape (0,)
            group.arrays[path] = [(None, 0)]
            return
        is_scale = h5ds.is_scale(dset.id)
        if is_scale and dset.ndim >= 1:
            # A dimension of the group (netCDF-4 dimensions without a variable included).
            group.scales.append((variable_name(posixpath.basename(dset.name)), dset.shape[0]))
        if is_scale and dset.ndim == 1:
            axes: list[Axis] = [(variable_name(posixpath.basename(dset.name)), dset.shape[0])]
        else:
            axes = [(self._scale_name(dset, axis), size) for axis, size in enumerate(dset.shape)]
        # An HDF5 array element type becomes trailing axes, which no scale can name.
        try:
            element_shape = dset.dtype.shape
        except (ValueError, TypeError):  # a type h5py cannot map: the scan leaves it out
            element_shape = ()
        axes += [(None, size) for size in element_shape]
        group.arrays[path] = axes

    def finish(self, arrays: dict[str, ArrayNode]) -> None:
        """Set ``_ARRAY_DIMENSIONS`` of every array in ``arrays`` that was added."""
        next_number: dict[str, int] = {}
        for group_path in parents_first(self._groups):
            group = self._groups[group_path]
            first = first_number(group_path, next_number)
            names, next_number[group_path] = name_group_axes(
                list(group.arrays.values()), first, group.scales)
            for path, dims in zip(group.arrays, names, strict=True):
                if path in arrays:
                    arrays[path].attrs[DIMENSIONS] = list(dims)

    @staticmethod
    def _scale_name(dset: h5py.Dataset, axis: int) -> str | None:
        try:
            scales = dset.dims[axis]
            if len(scales) == 0:
                return None
            # The last scale attached, as netCDF-C and h5netcdf name the axis.
            return variable_name(posixpath.basename(scales[len(scales) - 1].name))
        except (RuntimeError, KeyError, ValueError, OSError):
            # A DIMENSION_LIST that points nowhere (a damaged or half-copied file).
            return None
