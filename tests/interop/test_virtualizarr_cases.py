"""The HDF5/NetCDF files of VirtualiZarr's own parser tests (its tests/test_parsers/conftest.py
fixtures), made here, through refindex.virtualizarr.Parser: each reads back bit for bit
through the ManifestStore, a kerchunk JSON and an Icechunk repository."""

from __future__ import annotations

from functools import partial

import h5py
import hdf5plugin
import netCDF4
import numpy as np
import pytest
import virtualizarr as vz
import xarray as xr

from refindex.virtualizarr import Parser
from tests.interop.virtual import (
    assert_round_trips,
    assert_same,
    loaded,
    local_registry,
    open_virtual,
    reference,
    url_of,
)


def _h5(path, build):
    with h5py.File(path, "w") as f:
        build(f)
    return path


RNG = np.random.default_rng(7)

CASES = {
    "empty_dataset": lambda f: f.create_dataset("data", shape=(0,), dtype="f"),
    "no_chunks": lambda f: f.create_dataset("data", data=RNG.random((10, 10)), chunks=None),
    "chunked": lambda f: f.create_dataset("data", data=RNG.random((100, 100)), chunks=(50, 50)),
    "never_written": lambda f: f.create_dataset("data", shape=(20,), chunks=(5,), dtype="i4",
                                                fillvalue=42),
    "scalar_fill_value": lambda f: f.create_dataset("data", data=RNG.integers(0, 10, 5),
                                                    chunks=True, fillvalue=42),
    "big_endian": lambda f: f.create_dataset("data", data=np.full(10, 10, ">f4")),
    "multiple_datasets": lambda f: (f.create_dataset("data", data=RNG.random((10, 10))),
                                    f.create_dataset("data2", data=RNG.random((10, 10)))),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hdf5_layouts_round_trip(case, tmp_path):
    assert_round_trips(_h5(tmp_path / f"{case}.nc", CASES[case]), tmp_path)


def _scales(f, multiple=False):
    f.create_dataset("data", data=[1, 2])
    f.create_dataset("x", data=[0, 1])
    f["x"].make_scale()
    f["data"].dims[0].attach_scale(f["x"])
    if multiple:
        f.create_dataset("y", data=[0, 1])
        f["y"].make_scale()
        f["data"].dims[0].attach_scale(f["y"])


def _chunked_dimensions(f):
    f.create_dataset("data", data=RNG.random((100, 100)), chunks=(50, 50))
    for name, axis in (("x", 0), ("y", 1)):
        f.create_dataset(name, data=RNG.random(100))
        f["data"].dims[axis].attach_scale(f[name])


@pytest.mark.parametrize("build", [_scales, lambda f: _scales(f, multiple=True),
                                   _chunked_dimensions,
                                   lambda f: (f.create_dataset("data", data=[1, 2]),
                                              f["data"].make_scale())],
                         ids=["single_scale", "multiple_scales", "chunked_dimensions",
                              "is_scale"])
def test_dimension_scales_round_trip(build, tmp_path):
    assert_round_trips(_h5(tmp_path / "scales.nc", build), tmp_path)


FILTERS = {
    "gzip": {"compression": "gzip", "compression_opts": 1},
    "blosc_lz4": hdf5plugin.Blosc(cname="lz4", clevel=9, shuffle=hdf5plugin.Blosc.SHUFFLE),
    "lz4": hdf5plugin.LZ4(nbytes=0),
    "bzip2": hdf5plugin.BZip2(),
    "zstd": hdf5plugin.Zstd(clevel=2),
    "shuffle": {"shuffle": True},
}


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_filter_encoded_round_trip(name, tmp_path):
    path = _h5(tmp_path / f"{name}.nc",
               lambda f: f.create_dataset("data", data=np.arange(100), **FILTERS[name]))
    assert_round_trips(path, tmp_path)


@pytest.mark.parametrize("compression", ["blosc_zlib", None])
def test_netcdf4_test_data_round_trips(compression, tmp_path):
    from xarray.tests.test_dataset import create_test_data

    ds = create_test_data(dim_sizes=(20, 80, 10)).drop_dims("dim3")
    ds["var2"].encoding.update({"chunksizes": (20, 40), "blosc_shuffle": 1,
                                "fletcher32": False})
    if compression:
        ds["var2"].encoding["compression"] = compression
    path = tmp_path / "test_data.nc"
    ds.to_netcdf(path, engine="netcdf4")
    assert_round_trips(path, tmp_path, engine="netcdf4")


@pytest.mark.parametrize("encoding", [{"compression": "gzip", "compression_opts": 7},
                                      {"zlib": True, "complevel": 9}], ids=["gzip", "zlib"])
def test_filters_and_cf_packing_round_trip(encoding, tmp_path):
    x = np.arange(100)
    temperature = 0.1 * x[:, None] + 0.1 * x[None, :]
    temperature[0][0] = -9999
    ds = xr.Dataset({"temperature": (["x", "y"], temperature)}, coords={"x": x, "y": x})
    fill = np.int16(-9999)
    path = tmp_path / "cf.nc"
    ds.to_netcdf(path, engine="h5netcdf", encoding={
        "temperature": {"dtype": "int16", "scale_factor": 0.1, "add_offset": 273.15,
                        "_FillValue": fill, **encoding},
        "x": {"_FillValue": fill}, "y": {"_FillValue": fill}})
    assert_round_trips(path, tmp_path)
    decoded = open_virtual(path, loadable_variables=["temperature", "x", "y"])
    xr.testing.assert_identical(decoded.load(), xr.open_dataset(path, engine="h5netcdf"))


def _filled_with_scale(f, data, fill) -> None:
    """``data`` with ``_FillValue`` ``fill``, and a dimension scale of the same values."""
    dset = f.create_dataset("data", data=data, chunks=True)
    scale = f.create_dataset("dim_scale", data=data, chunks=True)
    scale.make_scale()
    dset.dims[0].attach_scale(scale)
    dset.attrs["_FillValue"] = fill


@pytest.mark.parametrize("fill", [-9999, -9999.0, np.nan, False], ids=str)
def test_cf_fill_values_mask_as_h5netcdf_does(fill, tmp_path):
    data = {bool: np.array([True, False, False, True, True])}.get(
        type(fill), RNG.random(5) if isinstance(fill, float) else RNG.integers(0, 10, 5))

    path = _h5(tmp_path / "fill.nc", partial(_filled_with_scale, data=data, fill=fill))
    assert_round_trips(path, tmp_path)
    vds = open_virtual(path, loadable_variables=["data", "dim_scale"])
    expected = xr.open_dataset(path, engine="h5netcdf")
    xr.testing.assert_identical(vds.load(), expected.load())


def test_scalar_never_written_with_fill_value(tmp_path):
    path = tmp_path / "scalar.nc4"
    with netCDF4.Dataset(path, "w") as f:
        f.createVariable("data", "<i4", fill_value=-999)
        f.long_name = "empty scalar data"
    vds = assert_round_trips(path, tmp_path, engine="netcdf4")
    assert vds.attrs["long_name"] == "empty scalar data"


def test_groups_and_nested_groups(tmp_path):
    data = RNG.random((10, 10))

    def build(f):
        f.create_group("group").create_dataset("data", data=data)
        f["group"].create_group("nested_group").create_dataset("data", data=data * 2)

    path = _h5(tmp_path / "nested.nc", build)
    for group in ("group", "group/nested_group"):
        store = Parser(group=group)(url_of(path), local_registry())
        assert_same(loaded(store.to_virtual_dataset(), store), reference(path, group=group))
    tree = vz.open_virtual_datatree(url_of(path), registry=local_registry(), parser=Parser())
    assert sorted(tree.groups) == ["/", "/group", "/group/nested_group"]
    assert tree["group/nested_group/data"].data.manifest.shape_chunk_grid == (1, 1)


def test_netcdf3_round_trips(tmp_path):
    path = tmp_path / "file.nc"
    xr.Dataset({"foo": ("x", np.array([1, 2, 3]))}).to_netcdf(path, format="NETCDF3_CLASSIC")
    assert_round_trips(path, tmp_path, engine="netcdf4")


def test_root_coordinates_attribute(tmp_path):
    data = RNG.random((100, 100))

    def build(f):
        for name in ("data", "lat", "lon"):
            f.create_dataset(name, data=data, chunks=True)
        f.attrs.create(name="coordinates", data="lat lon")

    vds = assert_round_trips(_h5(tmp_path / "coordinates.nc", build), tmp_path)
    assert {"lat", "lon"} <= set(vds.coords)


RECORD = np.dtype([("id", "i4"), ("temperature", "f4")])


@pytest.mark.parametrize(("fill", "data"), [
    ("NaN", np.array(["three"], dtype="S10")),
    ((-9999, -9999.0), np.array([(1, 98.6), (2, 101.3)], dtype=RECORD)),
], ids=["bytes", "record"])
def test_fill_values_of_bytes_and_records_open_unmasked(fill, data, tmp_path):
    path = _h5(tmp_path / "fill.nc", partial(_filled_with_scale, data=data, fill=fill))
    vds = assert_round_trips(path, tmp_path)
    assert "_FillValue" not in vds["data"].attrs


def _packed(f, scale=None):
    data = np.arange(100, dtype=np.int16) - np.float32(5.0)
    if scale is not None:
        data = data / scale
    f.create_dataset("data", data=data, chunks=True)
    f["data"].attrs.create(name="add_offset", data=np.float32(5.0))
    if scale is not None:
        f["data"].attrs.create(name="scale_factor", data=np.array([scale]))


@pytest.mark.parametrize("scale", [None, 0.01], ids=["add_offset", "scale_add_offset"])
def test_cf_packing_attributes_decode_as_h5netcdf_does(scale, tmp_path):
    path = _h5(tmp_path / "packed.nc", lambda f: _packed(f, scale))
    assert_round_trips(path, tmp_path)
    vds = open_virtual(path, loadable_variables=["data"])
    expected = xr.open_dataset(path, engine="h5netcdf", phony_dims="access")
    xr.testing.assert_identical(vds.load(), expected.load())
