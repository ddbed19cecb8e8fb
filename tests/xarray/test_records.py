"""Records (HDF5 compound types) open in xarray with their structured dtype and h5py's
values: little- and big-endian fields, nested records, array fields, NetCDF4 compound
types; chunked, compressed, with a fill value, scalar."""

from __future__ import annotations

import h5py
import netCDF4
import numpy as np
import pytest
import xarray as xr

from tests.roundtrip import scan_to_sidecar
from tests.xarray.same_as import assert_same_as_h5netcdf, assert_same_values

RECORD = np.dtype([("count", "<i2"), ("value", "<f8"), ("label", "S24")])  # 34 bytes
BIG_ENDIAN = np.dtype([("count", ">i2"), ("value", ">f8"), ("label", "S24")])
NESTED = np.dtype([("id", ">u4"), ("position", [("x", ">f4"), ("y", "<f4")])])
WITH_ARRAY = np.dtype([("id", "<i2"), ("samples", ">f4", (3,))])


def records(dtype: np.dtype, shape=(10,)) -> np.ndarray:
    values = np.zeros(shape, dtype)
    flat = values.reshape(-1)
    for number, name in enumerate(dtype.names):
        field = flat[name]
        if field.dtype.names is not None:
            for inner in field.dtype.names:
                field[inner] = np.arange(flat.size) * 0.5 - number
        elif field.dtype.kind == "S":
            field[...] = [f"item {i}".encode() for i in range(flat.size)]
        else:
            shape = field.shape
            field[...] = (np.arange(np.prod(shape)) * 3 - 7).reshape(shape)
        flat[name] = field
    return values


CASES = {
    "little_endian": dict(data=records(RECORD)),
    "big_endian": dict(data=records(BIG_ENDIAN)),
    "big_endian_chunked_compressed": dict(data=records(BIG_ENDIAN, (12, 3)), chunks=(5, 2),
                                          compression="gzip"),
    "nested_mixed_order": dict(data=records(NESTED)),
    "array_field": dict(data=records(WITH_ARRAY)),
    "with_fill_value": dict(shape=(6,), dtype=BIG_ENDIAN, chunks=(4,),
                            fillvalue=np.array((1, 2.5, b"fill"), BIG_ENDIAN)),
}


@pytest.fixture(scope="module")
def record_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("records")
    path = folder / "records.h5"
    with h5py.File(path, "w") as f:
        for name, kwargs in CASES.items():
            f.create_dataset(name, **kwargs)
        f["with_fill_value"][:2] = records(BIG_ENDIAN, (2,))
        f.create_dataset("scalar", data=records(BIG_ENDIAN, ()))
    return path, scan_to_sidecar(path, folder)


@pytest.mark.parametrize("name", [*CASES, "scalar"])
def test_records_read_as_h5py_reads_them(record_file, name):
    path, sidecar = record_file
    variable = xr.open_dataset(sidecar, engine="refindex")[name]
    with h5py.File(path, "r") as f:
        expected = f[name][()]
    assert variable.dtype.names == expected.dtype.names
    assert variable.dtype.isnative  # xarray's byte-order decoding cannot cast records
    # field by field, each converted (exactly) to native byte order
    assert_same_values(variable.values, np.asarray(expected).astype(variable.dtype), name)


def test_big_endian_records_keep_their_field_types_in_native_order(record_file):
    variable = xr.open_dataset(record_file[1], engine="refindex")["big_endian"]
    assert variable.dtype == np.dtype([("count", "=i2"), ("value", "=f8"), ("label", "S24")])


def test_records_read_lazily_with_dask_equal_an_eager_read(record_file):
    lazy = xr.open_dataset(record_file[1], engine="refindex", chunks={})
    eager = xr.open_dataset(record_file[1], engine="refindex")
    name = "big_endian_chunked_compressed"
    assert lazy[name].chunks == ((5, 5, 2), (2, 1))
    xr.testing.assert_identical(lazy[name][3:9, 1:].compute(), eager[name][3:9, 1:])


def test_little_endian_records_open_as_h5netcdf_opens_them(tmp_path):
    path = tmp_path / "little.h5"
    with h5py.File(path, "w") as f:
        f["records"] = records(RECORD)
        f["nested"] = records(np.dtype([("a", "<i2"), ("b", [("x", "<f4"), ("y", "<i4")])]))
    assert_same_as_h5netcdf(path, scan_to_sidecar(path, tmp_path))


def test_netcdf4_compound_variables_open_as_h5netcdf_opens_them(tmp_path):
    path = tmp_path / "compound.nc"
    pair = np.dtype([("level", "<i2"), ("reading", "<f8")])
    with netCDF4.Dataset(path, "w") as nc:
        kind = nc.createCompoundType(pair, "pair")
        nc.createDimension("station", 5)
        variable = nc.createVariable("observation", kind, ("station",))
        variable[:] = np.array([(i, i * 1.5) for i in range(5)], pair)
    sidecar = scan_to_sidecar(path, tmp_path)
    assert_same_as_h5netcdf(path, sidecar)
    # the values and fields equal; h5py's dtype keeps the file type's padding, Zarr's none
    ours = xr.open_dataset(sidecar, engine="refindex")
    xr.testing.assert_identical(ours, xr.open_dataset(path, engine="h5netcdf"))
