"""Dimension names of HDF5 datasets: HDF5 dimension scales and NetCDF4 dimensions, as
``_ARRAY_DIMENSIONS``; datasets without scales get phony names, as h5netcdf gives them."""

from __future__ import annotations

import posixpath

import h5py
from h5py import h5ds

# netCDF-4 writes a dimension that has no variable as a dataset with this NAME attribute.
NETCDF_DIMENSION_ONLY = b"This is a netCDF dimension but not a netCDF variable"
NETCDF_NON_COORD_PREFIX = "_nc4_non_coord_"


def is_dimension_only(dset: h5py.Dataset) -> bool:
    """Whether ``dset`` is netCDF-4's placeholder for a dimension without a variable."""
    if not h5ds.is_scale(dset.id):
        return False
    name = dset.attrs.get("NAME", b"")
    return isinstance(name, bytes) and name.startswith(NETCDF_DIMENSION_ONLY)


def variable_name(name: str) -> str:
    """The name readers know a dataset by (netCDF-4 hides a prefix on some variables)."""
    return name.removeprefix(NETCDF_NON_COORD_PREFIX)


class DimensionNamer:
    """Names each axis of each dataset, one instance per scanned file."""

    def __init__(self) -> None:
        self._phony: dict[str, list[tuple[int, str]]] = {}
        self._count = 0

    def names(self, dset: h5py.Dataset, group_path: str) -> list[str]:
        if dset.shape is None:
            return [self._phony_name(group_path, 0, set())]
        if h5ds.is_scale(dset.id) and dset.ndim == 1:
            return [variable_name(posixpath.basename(dset.name))]
        names: list[str] = []
        for axis in range(dset.ndim):
            name = self._scale_name(dset, axis)
            names.append(name or self._phony_name(group_path, dset.shape[axis], set(names)))
        return names

    def extended(self, names: list[str], shape: list[int], group_path: str) -> list[str]:
        """``names`` with phony names for the trailing axes ``shape`` has beyond them (the
        axes of an HDF5 array element type)."""
        out = list(names)
        for size in shape[len(names):]:
            out.append(self._phony_name(group_path, size, set(out)))
        return out

    @staticmethod
    def _scale_name(dset: h5py.Dataset, axis: int) -> str | None:
        try:
            scales = dset.dims[axis]
            if len(scales) == 0:
                return None
            return variable_name(posixpath.basename(scales[0].name))
        except (RuntimeError, KeyError, ValueError, OSError):
            # A DIMENSION_LIST that points nowhere (a damaged or half-copied file).
            return None

    def _phony_name(self, group_path: str, size: int, taken: set[str]) -> str:
        phony = self._phony.setdefault(group_path, [])
        for known_size, name in phony:
            if known_size == size and name not in taken:
                return name
        name = f"phony_dim_{self._count}"
        self._count += 1
        phony.append((size, name))
        return name
