"""The xarray backend (engine="refindex"): what it claims to open, the open_dataset options,
and CF decoding that matches netCDF4's reading of the same file."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import xarray as xr

import refindex
from refindex.xarray.backend import RefindexBackendEntrypoint
from tests.roundtrip import assert_xarray_matches, kerchunk_refs, scan_to_sidecar
from tests.scan import h5files


@pytest.fixture(scope="module")
def netcdf(tmp_path_factory):
    """(NetCDF4 path, our sidecar of it)."""
    folder = tmp_path_factory.mktemp("backend")
    path = folder / "ocean.nc"
    h5files.netcdf4(path)
    return path, scan_to_sidecar(path, folder)


@pytest.fixture(scope="module")
def kerchunk_sidecar(netcdf, tmp_path_factory):
    path = tmp_path_factory.mktemp("kerchunk") / "ocean.kerchunk.json"
    path.write_text(json.dumps(kerchunk_refs(netcdf[0])))
    return path


@pytest.fixture
def entrypoint() -> RefindexBackendEntrypoint:
    return RefindexBackendEntrypoint()


def netcdf4_reference(path, **kwargs) -> xr.Dataset:
    return xr.open_dataset(path, engine="netcdf4", **kwargs)


# --- what the backend claims --------------------------------------------------------------


def test_guess_can_open_our_sidecar_by_path_string_path_and_file_url(entrypoint, netcdf):
    sidecar = netcdf[1]
    assert entrypoint.guess_can_open(str(sidecar))
    assert entrypoint.guess_can_open(sidecar)
    assert entrypoint.guess_can_open(f"file://{sidecar}")


def test_guess_can_open_a_kerchunk_sidecar(entrypoint, kerchunk_sidecar, tmp_path):
    assert entrypoint.guess_can_open(kerchunk_sidecar)
    version_0 = tmp_path / "v0.json"
    version_0.write_text(json.dumps(json.loads(kerchunk_sidecar.read_text())["refs"]))
    assert entrypoint.guess_can_open(version_0)


def test_guess_can_open_an_index_or_store(entrypoint, netcdf):
    store = refindex.open_store(netcdf[1])
    assert entrypoint.guess_can_open(store) and entrypoint.guess_can_open(store.index)


@pytest.mark.parametrize("content", ['{"name": "not a sidecar", "values": [1, 2]}',
                                     "[1, 2, 3]", "plain text, not JSON"],
                         ids=["other_json", "json_list", "text"])
def test_guess_cannot_open_other_files(entrypoint, tmp_path, content):
    path = tmp_path / "other.json"
    path.write_text(content)
    assert not entrypoint.guess_can_open(path)


def test_guess_cannot_open_hdf5_files_or_missing_files(entrypoint, netcdf, tmp_path):
    assert not entrypoint.guess_can_open(netcdf[0])
    assert not entrypoint.guess_can_open(tmp_path / "missing.refs.json")
    assert not entrypoint.guess_can_open(b"bytes")


def test_xarray_lists_refindex_among_the_engines_that_can_open_a_sidecar(netcdf):
    # xarray picks the first engine that claims a file; kerchunk's engine claims sidecars too
    # and comes before "refindex", but after refindex's "_refindex" (test_guess.py).
    engines = xr.backends.list_engines()
    assert "refindex" in engines
    claiming = [name for name, engine in engines.items()
                if engine.guess_can_open(str(netcdf[1]))]
    assert "refindex" in claiming
    assert "refindex" not in [name for name, engine in engines.items()
                              if engine.guess_can_open(str(netcdf[0]))]


# --- open_dataset options -------------------------------------------------------------------


def test_group_opens_a_subgroup(netcdf):
    ours = xr.open_dataset(netcdf[1], engine="refindex", group="forecast")
    xr.testing.assert_identical(ours, netcdf4_reference(netcdf[0], group="forecast"))
    assert_xarray_matches(netcdf[0], netcdf[1], group="forecast")


def test_group_accepts_a_leading_slash(netcdf):
    ours = xr.open_dataset(netcdf[1], engine="refindex", group="/forecast")
    assert set(ours.data_vars) == {"skill"}


def test_drop_variables_leaves_them_out(netcdf):
    ds = xr.open_dataset(netcdf[1], engine="refindex", drop_variables=["temp", "precip"])
    assert "temp" not in ds.variables and "precip" not in ds.variables
    assert {"lat", "lon", "time", "lat_bnds", "station"} <= set(ds.variables)


def test_chunks_gives_dask_arrays_chunked_like_the_file(netcdf):
    ds = xr.open_dataset(netcdf[1], engine="refindex", chunks={})
    temp = ds["temp"]
    assert temp.chunks == ((4, 4, 1), (8, 7), (8, 8, 4))
    assert temp.encoding["preferred_chunks"] == {"time": 4, "lat": 8, "lon": 8}
    eager = xr.open_dataset(netcdf[1], engine="refindex")
    xr.testing.assert_identical(ds.compute(), eager.load())


def test_chunks_of_a_dask_read_equal_an_eager_read(netcdf):
    lazy = xr.open_dataset(netcdf[1], engine="refindex", chunks={"time": 8})
    eager = xr.open_dataset(netcdf[1], engine="refindex")
    assert lazy["temp"].chunks[0] == (8, 1)
    xr.testing.assert_identical(lazy.compute(), eager.load())


def test_decode_cf_false_reads_the_raw_values_h5py_reads(netcdf):
    assert_xarray_matches(netcdf[0], netcdf[1])
    raw = xr.open_dataset(netcdf[1], engine="refindex", decode_cf=False)
    assert raw["precip"].dtype == np.int16 and raw["precip"].attrs["scale_factor"]
    with h5py.File(netcdf[0], "r") as f:
        np.testing.assert_array_equal(raw["temp"].values, f["temp"][...])  # 1e20, not NaN
        np.testing.assert_array_equal(raw["time"].values, f["time"][...])


def test_an_index_or_store_can_be_opened_directly(netcdf):
    store = refindex.open_store(netcdf[1])
    from_path = xr.open_dataset(netcdf[1], engine="refindex")
    xr.testing.assert_identical(xr.open_dataset(store, engine="refindex"), from_path)
    xr.testing.assert_identical(xr.open_dataset(store.index, engine="refindex"), from_path)


def test_storage_options_are_read_options(s3_server, s3_bucket, tmp_path, monkeypatch):
    path = tmp_path / "ocean.nc"
    h5files.netcdf4(path)
    url = s3_server.upload(path, s3_bucket, "ocean.nc")
    for name, value in s3_server.env().items():
        if not name.startswith("AWS_ENDPOINT_URL"):
            monkeypatch.setenv(name, value)  # credentials only: the endpoint comes below
    endpoint = {"endpoint_url": s3_server.endpoint_url}
    sidecar = tmp_path / "ocean.refs.json"
    refindex.write_index(refindex.scan(url, read_options=refindex.ReadOptions(**endpoint)).index,
                         sidecar)
    ds = xr.open_dataset(sidecar, engine="refindex", storage_options=endpoint)
    xr.testing.assert_identical(ds["temp"], netcdf4_reference(path)["temp"])


# --- CF decoding, as netCDF4 does it -------------------------------------------------------


def test_fill_value_attribute_masks_like_netcdf4(netcdf):
    ours = xr.open_dataset(netcdf[1], engine="refindex")
    reference = netcdf4_reference(netcdf[0])
    assert ours["temp"].isnull().any()
    xr.testing.assert_identical(ours["temp"], reference["temp"])


def test_times_with_units_and_calendar_decode_like_netcdf4(netcdf):
    ours = xr.open_dataset(netcdf[1], engine="refindex")
    reference = netcdf4_reference(netcdf[0])
    xr.testing.assert_identical(ours["time"], reference["time"])
    assert ours["time"].encoding["calendar"] == "noleap"


def test_strings_decode_like_netcdf4(netcdf):
    ours = xr.open_dataset(netcdf[1], engine="refindex")
    reference = netcdf4_reference(netcdf[0])
    assert ours["station"].values.tolist() == reference["station"].values.tolist()


def test_packed_values_unpack_exactly_like_netcdf4(netcdf):
    ours = xr.open_dataset(netcdf[1], engine="refindex")["precip"]
    reference = netcdf4_reference(netcdf[0])["precip"]
    assert ours.dtype == reference.dtype
    np.testing.assert_array_equal(ours.values, reference.values)


def test_packed_values_unpack_to_the_type_of_scale_factor(netcdf):
    ours = xr.open_dataset(netcdf[1], engine="refindex")["precip"]
    assert ours.dtype == netcdf4_reference(netcdf[0])["precip"].dtype == np.float32


def test_whole_netcdf4_file_decodes_like_netcdf4_but_for_packed_types(netcdf):
    ours = xr.open_dataset(netcdf[1], engine="refindex")
    reference = netcdf4_reference(netcdf[0])
    xr.testing.assert_identical(ours.drop_vars("precip"), reference.drop_vars("precip"))


def hdf5_fill_without_attribute(path) -> None:
    with h5py.File(path, "w") as f:
        partly = f.create_dataset("partly_written", shape=(10,), dtype="f4", chunks=(5,),
                                  fillvalue=7.0)
        partly[:5] = [1, 7, 3, 4, 5]
        f.create_dataset("nan_fill", data=np.array([1, np.nan, 3], "f4"), fillvalue=np.nan)
        f.create_dataset("int_fill", data=np.array([0, -5, 2], "i2"), fillvalue=-5)
        marked = f.create_dataset("marked", data=np.array([1, -1, 3], "i2"), fillvalue=-1)
        marked.attrs["_FillValue"] = np.int16(-1)


def test_hdf5_fill_value_without_fill_value_attribute_is_not_masked(tmp_path):
    path = tmp_path / "fills.h5"
    hdf5_fill_without_attribute(path)
    ds = xr.open_dataset(scan_to_sidecar(path, tmp_path), engine="refindex")
    np.testing.assert_array_equal(ds["partly_written"].values, [1, 7, 3, 4, 5, 7, 7, 7, 7, 7])
    np.testing.assert_array_equal(ds["int_fill"].values, [0, -5, 2])
    assert ds["int_fill"].dtype == np.int16
    assert "_FillValue" not in ds["partly_written"].encoding


def test_fill_value_attribute_is_masked_as_h5netcdf_does(tmp_path):
    path = tmp_path / "fills.h5"
    hdf5_fill_without_attribute(path)
    ours = xr.open_dataset(scan_to_sidecar(path, tmp_path), engine="refindex")
    reference = xr.open_dataset(path, engine="h5netcdf", phony_dims="access")
    for name in ("partly_written", "nan_fill", "int_fill", "marked"):
        np.testing.assert_array_equal(ours[name].values, reference[name].values)
        assert ours[name].dtype == reference[name].dtype, name


def test_encoding_names_the_sidecars_codecs_so_to_zarr_writes_a_plain_store(netcdf, tmp_path):
    ds = xr.open_dataset(netcdf[1], engine="refindex")
    for variable in ds.variables.values():
        codecs = [*variable.encoding.get("compressors", ()), *variable.encoding.get("filters", ())]
        assert not [c for c in codecs if c.codec_id.startswith("refindex.")], variable.name
    ds.to_zarr(tmp_path / "copy.zarr", zarr_format=2)
    # Stored values compared (packed ones too): CF decoding of a Zarr copy is xarray's.
    copy = xr.open_zarr(tmp_path / "copy.zarr", mask_and_scale=False)
    stored = xr.open_dataset(netcdf[1], engine="refindex", mask_and_scale=False)
    for name, variable in stored.variables.items():
        if variable.dtype.kind not in "OUT":  # text comes back as zarr's string dtype
            assert copy[name].dtype == variable.dtype, name
        np.testing.assert_array_equal(copy[name].values, variable.values, err_msg=name)
