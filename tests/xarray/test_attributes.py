"""Attributes read through the xarray backend come back with the values and types h5netcdf
gives: NaN and infinities as floats, every numeric width, arrays as arrays, empty
attributes as h5netcdf shows them, on variables and on groups; in either sidecar format."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import xarray as xr

import refindex
from refindex.combine import CombineOptions, combine
from refindex.xarray.attributes import typed_value
from tests.roundtrip import scan_to_sidecar
from tests.scan import nc3files
from tests.xarray.same_as import assert_same_as_h5netcdf, assert_same_attr

ATTRIBUTES = {
    "nan64": np.float64(np.nan),
    "nan32": np.float32(np.nan),
    "inf": np.float64(np.inf),
    "minus_inf32": np.float32(-np.inf),
    "f32": np.float32(0.1),
    "f64": np.float64(0.1),
    "i1": np.int8(-3),
    "u2": np.uint16(60000),
    "i8": np.int64(-2**62),
    "u8": np.uint64(2**64 - 1),
    "vector32": np.array([1.5, np.nan, -np.inf], "f4"),
    "vector_i2": np.array([1, -2, 3], "i2"),
    "empty_f4": h5py.Empty("f4"),
    "empty_i4": h5py.Empty("i4"),
    "empty_char": h5py.Empty("S1"),
    "empty_text": h5py.Empty("S8"),
    "text": "plain text",
}


def with_attributes(path) -> None:
    with h5py.File(path, "w") as f:
        variable = f.create_dataset("data", data=np.arange(4.0))
        group = f.create_group("forecast")
        group.create_dataset("skill", data=np.arange(3, dtype="f4"))
        for target in (f, variable, group):
            for name, value in ATTRIBUTES.items():
                target.attrs[name] = value


@pytest.fixture(scope="module")
def attributed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("attrs")
    path = folder / "attrs.h5"
    with_attributes(path)
    return path, folder


@pytest.mark.parametrize("format", ["native", "kerchunk"])
@pytest.mark.parametrize("group", [None, "forecast"])
def test_attributes_come_back_as_h5netcdf_gives_them(attributed, format, group):
    path, folder = attributed
    assert_same_as_h5netcdf(path, scan_to_sidecar(path, folder, format=format), group=group)


def test_nan_attributes_are_float_nan_not_text(attributed):
    path, folder = attributed
    ds = xr.open_dataset(scan_to_sidecar(path, folder), engine="refindex")
    for attrs in (ds.attrs, ds["data"].attrs):
        assert isinstance(attrs["nan64"], np.float64) and np.isnan(attrs["nan64"])
        assert isinstance(attrs["nan32"], np.float32) and np.isnan(attrs["nan32"])
        assert attrs["inf"] == np.inf


def test_group_attributes_keep_their_types(attributed):
    path, folder = attributed
    forecast = xr.open_dataset(scan_to_sidecar(path, folder), engine="refindex",
                               group="forecast")
    assert forecast.attrs["f32"].dtype == np.float32
    assert forecast.attrs["u8"] == np.uint64(2**64 - 1)


def test_empty_attributes_are_empty_arrays_and_one_character_ones_empty_text(attributed):
    path, folder = attributed
    attrs = xr.open_dataset(scan_to_sidecar(path, folder), engine="refindex")["data"].attrs
    assert attrs["empty_f4"].dtype == np.float32 and attrs["empty_f4"].size == 0
    assert attrs["empty_char"] == ""
    assert attrs["empty_text"].dtype == np.dtype("S8") and attrs["empty_text"].size == 0


def test_zarr_readers_see_the_json_forms(attributed):
    path, folder = attributed
    group = refindex.open_store(scan_to_sidecar(path, folder)).index.groups[""]
    assert group["nan64"] == "NaN" and group["empty_f4"] is None


def test_combining_keeps_the_group_attribute_types(tmp_path):
    members = []
    for day in range(2):
        member = tmp_path / f"day{day}.h5"
        with h5py.File(member, "w") as f:
            f.attrs["scale"] = np.float32(0.5)
            f.attrs["missing"] = np.float64(np.nan)
            time = f.create_dataset("time", data=np.array([day], "i4"))
            time.make_scale("time")
            values = f.create_dataset("values", data=np.array([day * 1.5], "f4"))
            values.dims[0].attach_scale(time)
        members.append(refindex.scan(str(member)).index)
    combined = combine(members, CombineOptions(concat_dims=["time"]))
    ds = xr.open_dataset(combined, engine="refindex")
    assert ds.attrs["scale"].dtype == np.float32 and np.isnan(ds.attrs["missing"])


def test_netcdf3_global_attributes_keep_their_types(tmp_path):
    path = tmp_path / "classic.nc"
    nc3files.every_type(path, "NETCDF3_64BIT_DATA")
    ours = xr.open_dataset(scan_to_sidecar(path, tmp_path), engine="refindex")
    reference = xr.open_dataset(path, engine="netcdf4")
    for name, value in reference.attrs.items():
        assert_same_attr(ours.attrs[name], value, name)


def test_sidecars_record_group_attribute_dtypes(attributed):
    path, folder = attributed
    native = json.loads(scan_to_sidecar(path, folder).read_text())
    assert native["refindex_sidecar"] == "1.2"  # the version that added group_attr_dtypes
    assert native["group_attr_dtypes"]["forecast"]["f32"] == "<f4"
    assert native["group_attr_dtypes"][""]["empty_char"] == "|S1"
    kerchunk = json.loads(scan_to_sidecar(path, folder, format="kerchunk").read_text())
    assert kerchunk["refindex"]["group_attribute_dtypes"]["forecast"]["nan32"] == "<f4"


@pytest.mark.parametrize(("value", "dtype", "expected"), [
    ("NaN", "<f8", np.float64(np.nan)),
    (["Infinity", 1.0], "<f4", np.array([np.inf, 1.0], "f4")),
    ([1.0, "NaN"], "<c16", np.complex128(complex(1, np.nan))),
    ([[1.0, 2.0], [3.0, 4.0]], "<c8", np.array([1 + 2j, 3 + 4j], "c8")),
    (True, "|b1", np.bool_(True)),
    (None, "<i2", np.array([], "i2")),
    ("not a number", "<f4", "not a number"),
    (1.5, "<i4", 1.5),
    (300, "|i1", 300),
])
def test_typed_value_restores_the_json_form(value, dtype, expected):
    assert_same_attr(typed_value(value, dtype), expected, repr(value))
