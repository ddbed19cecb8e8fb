"""Arrays without dimension names open in xarray with phony_dim_N names, as h5netcdf names
them: HDF5 datasets without dimension scales, HDF5 array element types, Zarr stores (in a
directory, tar or zip) and kerchunk sidecars without _ARRAY_DIMENSIONS, and dimension
records of the wrong length."""

from __future__ import annotations

import json

import h5py
import netCDF4
import numpy as np
import pytest
import xarray as xr
import zarr
from kerchunk.zarr import single_zarr

import refindex
from refindex.phony_dims import name_group_axes
from tests.roundtrip import scan_to_sidecar
from tests.scan.zarr_stores import tar_of, zip_of
from tests.xarray.same_as import assert_same_as_h5netcdf

# --- the naming rule -----------------------------------------------------------------------


def test_arrays_of_a_group_share_one_phony_dimension_per_length():
    names, following = name_group_axes([[(None, 5)], [(None, 7), (None, 5)]], first=0)
    assert names == [("phony_dim_0",), ("phony_dim_1", "phony_dim_0")]
    assert following == 2


def test_an_array_with_two_axes_of_one_length_gets_two_dimensions_numbered_by_length():
    # h5netcdf makes the dimensions length by length, in the order lengths first appear.
    names, _ = name_group_axes([[(None, 3), (None, 5), (None, 3)]], first=4)
    assert names == [("phony_dim_4", "phony_dim_6", "phony_dim_5")]


def test_named_dimensions_of_the_length_are_taken_first():
    names, following = name_group_axes([[(None, 5), (None, 2)]], first=0, named=[("x", 5)])
    assert names == [("x", "phony_dim_0")] and following == 1


def test_taken_names_are_not_made_again():
    names, _ = name_group_axes([[(None, 4)]], first=0, taken=frozenset({"phony_dim_0"}))
    assert names == [("phony_dim_1",)]


# --- HDF5 datasets without dimension scales ------------------------------------------------


def hdf5_without_scales(path) -> None:
    with h5py.File(path, "w") as f:
        f["cube"] = np.arange(45.0).reshape(3, 5, 3)
        f["line"] = np.arange(5, dtype="i2")
        f["pairs"] = np.arange(14, dtype="u1").reshape(7, 2)
        f["scalar"] = np.float32(2.5)
        f["inner/deeper/values"] = np.arange(7, dtype="f4")
        f["inner/grid"] = np.zeros((2, 4), "i4")
        f["sibling/values"] = np.arange(6, dtype="i8")


@pytest.fixture(scope="module")
def no_scales(tmp_path_factory):
    folder = tmp_path_factory.mktemp("no_scales")
    path = folder / "plain.h5"
    hdf5_without_scales(path)
    return path, scan_to_sidecar(path, folder)


@pytest.mark.parametrize("group", [None, "inner", "inner/deeper", "sibling"])
def test_hdf5_without_dimension_scales_opens_as_h5netcdf_opens_it(no_scales, group):
    assert_same_as_h5netcdf(*no_scales, group=group)


def test_hdf5_phony_dimensions_are_shared_by_length(no_scales):
    ds = xr.open_dataset(no_scales[1], engine="refindex")
    assert ds["cube"].dims == ("phony_dim_0", "phony_dim_2", "phony_dim_1")
    assert ds["line"].dims == ("phony_dim_2",)
    assert ds["pairs"].dims == ("phony_dim_3", "phony_dim_4")


def netcdf_with_unlabeled_datasets(path) -> None:
    """A NetCDF4 file with named dimensions, plus datasets h5py added without scales."""
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("x", 5)
        nc.createDimension("t", 3)
        nc.createVariable("v", "f4", ("t", "x"))[:] = 1
        group = nc.createGroup("g")
        group.createDimension("y", 4)
        group.createVariable("w", "i4", ("y",))[:] = 2
    with h5py.File(path, "a") as f:
        f["u"] = np.arange(45.0).reshape(3, 5, 3)
        f["b"] = np.arange(7.0)
        f["g/u2"] = np.zeros((4, 7))
        f["g/h/u3"] = np.zeros((7,))
        f["a/u4"] = np.zeros((2,))


@pytest.mark.parametrize("group", [None, "g", "g/h", "a"])
def test_unlabeled_axes_take_a_named_dimension_of_their_length_as_h5netcdf_does(tmp_path,
                                                                                  group):
    path = tmp_path / "mixed.nc"
    netcdf_with_unlabeled_datasets(path)
    assert_same_as_h5netcdf(path, scan_to_sidecar(path, tmp_path), group=group)
    if group is None:
        ds = xr.open_dataset(scan_to_sidecar(path, tmp_path), engine="refindex")
        assert ds["u"].dims == ("t", "x", "phony_dim_0")


def test_an_array_element_type_gets_names_for_its_axes_too(tmp_path):
    # h5netcdf gives such a variable one dimension and two-dimensional values; refindex
    # serves the element's axes as array axes, each named.
    path = tmp_path / "element.h5"
    with h5py.File(path, "w") as f:
        vectors = f.create_dataset("vectors", shape=(5,), dtype=np.dtype(("f8", (2,))))
        vectors[...] = np.arange(10.0).reshape(5, 2)
        f["line"] = np.arange(5)
    ds = xr.open_dataset(scan_to_sidecar(path, tmp_path), engine="refindex")
    assert ds["vectors"].dims == ("phony_dim_0", "phony_dim_1")
    assert ds["line"].dims == ("phony_dim_0",)
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(ds["vectors"].values, f["vectors"][()])


# --- Zarr stores and kerchunk sidecars without _ARRAY_DIMENSIONS ---------------------------


def zarr_without_dimensions(path) -> None:
    root = zarr.open_group(path, mode="w", zarr_format=2)
    root.attrs["title"] = "no dimension names"
    field = root.create_array("field", shape=(4, 5), chunks=(2, 5), dtype="f4", fill_value=None)
    field[...] = np.arange(20, dtype="f4").reshape(4, 5)
    line = root.create_array("line", shape=(5,), chunks=(3,), dtype="i4", fill_value=None)
    line[...] = np.arange(5, dtype="i4")
    sub = root.create_group("sub")
    square = sub.create_array("square", shape=(5, 5), chunks=(5, 5), dtype="i2",
                              fill_value=None)
    square[...] = np.arange(25, dtype="i2").reshape(5, 5)
    zarr.consolidate_metadata(str(path))


@pytest.fixture(scope="module")
def zarr_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("zarr") / "plain.zarr"
    zarr_without_dimensions(path)
    return path


def scanned(location, tmp_path):
    sidecar = tmp_path / "store.refs.json"
    refindex.write_index(refindex.scan(str(location)).index, sidecar)
    return sidecar


@pytest.mark.parametrize("kind", ["directory", "tar", "zip"])
def test_a_zarr_store_without_dimension_names_opens_with_phony_names(zarr_store, tmp_path,
                                                                     kind):
    location = {"directory": lambda: zarr_store,
                "tar": lambda: tar_of(zarr_store, tmp_path / "plain.tar", top=""),
                "zip": lambda: zip_of(zarr_store, tmp_path / "plain.zip", top="")}[kind]()
    sidecar = scanned(location, tmp_path)
    ds = xr.open_dataset(sidecar, engine="refindex")
    assert ds["field"].dims == ("phony_dim_0", "phony_dim_1")
    assert ds["line"].dims == ("phony_dim_1",)  # the length of field's second axis
    original = zarr.open_group(zarr_store, mode="r")
    np.testing.assert_array_equal(ds["field"].values, original["field"][...])
    sub = xr.open_dataset(sidecar, engine="refindex", group="sub")
    # numbered on from the enclosing group's phony dimensions, as h5netcdf numbers them
    assert sub["square"].dims == ("phony_dim_2", "phony_dim_3")
    np.testing.assert_array_equal(sub["square"].values, original["sub/square"][...])


def test_zarr_readers_still_see_the_store_as_it_was(zarr_store, tmp_path):
    group = zarr.open_group(refindex.open_store(scanned(zarr_store, tmp_path)), mode="r")
    assert "_ARRAY_DIMENSIONS" not in group["field"].attrs


def test_an_index_opened_in_xarray_is_not_changed(zarr_store, tmp_path):
    store = refindex.open_store(scanned(zarr_store, tmp_path))
    xr.open_dataset(store, engine="refindex")
    assert "_ARRAY_DIMENSIONS" not in store.index.arrays["field"].attrs


def test_a_kerchunk_sidecar_of_a_zarr_store_without_dimension_names_opens(zarr_store,
                                                                           tmp_path):
    # kerchunk copies the store's metadata, consolidated .zmetadata included, as it is.
    sidecar = tmp_path / "kerchunk.json"
    sidecar.write_text(json.dumps(single_zarr(str(zarr_store), inline=0)))
    ds = xr.open_dataset(sidecar, engine="refindex")
    assert ds["field"].dims == ("phony_dim_0", "phony_dim_1")
    np.testing.assert_array_equal(ds["field"].values,
                                  zarr.open_group(zarr_store, mode="r")["field"][...])
    sub = xr.open_dataset(sidecar, engine="refindex", group="sub")
    assert sub["square"].dims == ("phony_dim_2", "phony_dim_3")


def test_a_kerchunk_sidecar_of_hdf5_without_dimension_names_opens(tmp_path):
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        f["a"] = np.arange(6.0).reshape(2, 3)
        f["b"] = np.arange(3, dtype="i4")
    doc = json.loads(scan_to_sidecar(path, tmp_path, format="kerchunk").read_text())
    for key in [k for k in doc["refs"] if k.endswith(".zattrs")]:
        del doc["refs"][key]  # as a writer that never names dimensions leaves it
    doc.pop("refindex")
    sidecar = tmp_path / "bare.json"
    sidecar.write_text(json.dumps(doc))
    ds = xr.open_dataset(sidecar, engine="refindex")
    assert ds["a"].dims == ("phony_dim_0", "phony_dim_1") and ds["b"].dims == ("phony_dim_1",)
    np.testing.assert_array_equal(ds["a"].values, np.arange(6.0).reshape(2, 3))


@pytest.mark.parametrize("record", [["only_one"], ["x", "y", "z"], "xy", [1, 2], None],
                         ids=["short", "long", "string", "numbers", "null"])
def test_a_dimension_record_of_the_wrong_form_gives_phony_names(tmp_path, record):
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        f["a"] = np.arange(6.0).reshape(2, 3)
        f["b"] = np.arange(2.0)
    index = refindex.scan(str(path)).index
    index.arrays["a"].attrs["_ARRAY_DIMENSIONS"] = record
    ds = xr.open_dataset(index, engine="refindex")
    # b keeps its name; a's axes get phony names that do not collide with it
    assert ds["b"].dims == ("phony_dim_0",)
    assert ds["a"].dims == ("phony_dim_1", "phony_dim_2")
    assert ds["a"].attrs == {}


def test_axes_a_record_leaves_null_get_phony_names_and_the_others_keep_theirs(tmp_path):
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        f["a"] = np.arange(6.0).reshape(2, 3)
    index = refindex.scan(str(path)).index
    index.arrays["a"].attrs["_ARRAY_DIMENSIONS"] = [None, "x"]  # as Zarr v3 may name them
    assert xr.open_dataset(index, engine="refindex")["a"].dims == ("phony_dim_0", "x")
