"""What the xarray tests check: a Dataset opened with engine="refindex" equals the one
xarray's h5netcdf engine opens from the file itself: variables, dimensions, values (bit for
bit, NaN-aware) and attributes with their types."""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr


def open_h5netcdf(path, group: str | None = None, **kwargs) -> xr.Dataset:
    """The file as ``xr.open_dataset(engine="h5netcdf")`` opens it, with its default phony
    dimension naming ("access")."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the phony_dims default moved to "access"
        return xr.open_dataset(path, engine="h5netcdf", phony_dims="access", group=group,
                               **kwargs)


def assert_same_as_h5netcdf(path, sidecar, group: str | None = None,
                            unhidden: frozenset[str] = frozenset(), **kwargs) -> None:
    """``unhidden``: attributes refindex keeps and h5netcdf hides (it hides CLASS and NAME
    everywhere, refindex only on dimension scales)."""
    ours = xr.open_dataset(sidecar, engine="refindex", group=group, **kwargs)
    for variable in [ours, *ours.variables.values()]:
        for name in unhidden:
            variable.attrs.pop(name, None)
    assert_same_dataset(ours, open_h5netcdf(path, group, **kwargs))


def assert_same_dataset(ours: xr.Dataset, reference: xr.Dataset) -> None:
    assert set(ours.variables) == set(reference.variables)
    assert dict(ours.sizes) == dict(reference.sizes)
    for name, expected in reference.variables.items():
        variable = ours[name].variable
        assert variable.dims == expected.dims, name
        assert_same_values(variable.values, expected.values, name)
        assert_same_attrs(variable.attrs, expected.attrs, name)
    assert_same_attrs(ours.attrs, reference.attrs, "global")


def assert_same_values(actual: np.ndarray, expected: np.ndarray, where: str) -> None:
    assert actual.shape == expected.shape, f"{where}: shape {actual.shape} != {expected.shape}"
    if expected.dtype.names is not None:
        # Records compare field by field: h5py keeps a file type's padding, Zarr has none.
        assert actual.dtype.names == expected.dtype.names, where
        for field in expected.dtype.names:
            assert_same_values(actual[field], expected[field], f"{where}.{field}")
        return
    assert actual.dtype == expected.dtype, f"{where}: dtype {actual.dtype} != {expected.dtype}"
    if expected.dtype.kind in "OUS":
        assert actual.tolist() == expected.tolist(), where
    else:
        assert actual.tobytes() == expected.tobytes(), f"{where}: values differ"


def assert_same_attrs(actual: dict, expected: dict, where: str) -> None:
    assert set(actual) == set(expected), f"{where}: {sorted(actual)} != {sorted(expected)}"
    for name, value in expected.items():
        assert_same_attr(actual[name], value, f"{where}: {name}")


def assert_same_attr(actual, expected, where: str) -> None:
    assert type(actual) is type(expected), f"{where}: {type(actual)} != {type(expected)}"
    if isinstance(expected, np.ndarray | np.generic):
        assert actual.dtype == expected.dtype, f"{where}: {actual.dtype} != {expected.dtype}"
        np.testing.assert_array_equal(actual, expected, err_msg=where)
    else:
        assert actual == expected, where
