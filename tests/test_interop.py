"""kerchunk interoperability, both ways: our sidecars read by fsspec's ReferenceFileSystem and
zarr, and kerchunk's sidecars (v1, v0, inlined, combined) read by refindex."""

from __future__ import annotations

import json

import fsspec
import h5py
import numpy as np
import pytest
import xarray as xr
import zarr
from kerchunk.combine import MultiZarrToZarr

import refindex
from tests.roundtrip import (
    assert_same_values,
    expected_values,
    h5_datasets,
    kerchunk_refs,
    scan_to_sidecar,
)
from tests.scan import h5files

# numcodecs' own codec ids: a reader needs nothing of refindex to decode these.
NUMCODECS_IDS = {"zlib", "shuffle", "fletcher32", "zstd", "blosc", "vlen-utf8", "vlen-bytes"}


def fsspec_group(sidecar) -> zarr.Group:
    """The sidecar opened as kerchunk users do: fsspec's ReferenceFileSystem under zarr."""
    fs = fsspec.filesystem("reference", fo=str(sidecar), asynchronous=True)
    store = zarr.storage.FsspecStore(fs, read_only=True, path="")
    return zarr.open_group(store, mode="r", zarr_format=2)


def assert_arrays_match_h5py(h5_path, group: zarr.Group, names) -> None:
    datasets = h5_datasets(h5_path)
    for name in names:
        assert_same_values(expected_values(datasets[name]), group[name][...], name)


def array_names(group: zarr.Group, prefix: str = "") -> list[str]:
    names = [prefix + name for name, _ in group.arrays()]
    for name, sub in group.groups():
        names += array_names(sub, f"{prefix}{name}/")
    return names


@pytest.fixture(scope="module")
def netcdf_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("interop") / "ocean.nc"
    h5files.netcdf4(path)
    return path


@pytest.fixture(scope="module")
def codecs_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("interop") / "codecs.h5"
    h5files.standard_codecs(path)
    return path


@pytest.fixture(scope="module")
def kerchunk_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("interop") / "kerchunk_codecs.h5"
    h5files.kerchunk_codecs(path)
    return path


# --- our sidecars, read by fsspec + zarr ----------------------------------------------------


def test_fsspec_reads_our_sidecar_of_a_netcdf4_file(netcdf_file, tmp_path):
    group = fsspec_group(scan_to_sidecar(netcdf_file, tmp_path, "kerchunk"))
    assert_arrays_match_h5py(netcdf_file, group, list(h5_datasets(netcdf_file)))


def test_fsspec_reads_our_sidecar_of_standard_codecs(codecs_file, tmp_path):
    group = fsspec_group(scan_to_sidecar(codecs_file, tmp_path, "kerchunk"))
    assert_arrays_match_h5py(codecs_file, group, list(h5_datasets(codecs_file)))


def test_our_sidecar_of_standard_codecs_names_only_numcodecs_codecs(codecs_file, tmp_path):
    refs = json.loads(scan_to_sidecar(codecs_file, tmp_path, "kerchunk").read_text())["refs"]
    used = {codec["id"] for key, value in refs.items() if key.endswith(".zarray")
            for codec in (json.loads(value)["filters"] or [])}
    assert used and used <= NUMCODECS_IDS


def test_fsspec_reads_our_sidecar_written_as_version_1_with_templates(codecs_file, tmp_path):
    doc = json.loads(scan_to_sidecar(codecs_file, tmp_path, "kerchunk").read_text())
    assert doc["version"] == 1 and doc["templates"]
    assert fsspec_group(tmp_path / "out.refs.json")["gzip"].shape == (50, 40)


# --- kerchunk's sidecars, read by refindex --------------------------------------------------


@pytest.mark.parametrize("options", [{}, {"inline_threshold": 300}], ids=["refs", "inlined"])
@pytest.mark.parametrize("which", ["netcdf_file", "kerchunk_file"])
def test_refindex_reads_kerchunk_sidecar_like_h5py(which, options, request, tmp_path):
    path = request.getfixturevalue(which)
    sidecar = tmp_path / "kerchunk.json"
    sidecar.write_text(json.dumps(kerchunk_refs(path, **options)))
    group = zarr.open_group(refindex.open_store(sidecar), mode="r", zarr_format=2)
    names = array_names(group)
    assert len(names) >= 5
    assert_arrays_match_h5py(path, group, names)


def test_kerchunk_inline_threshold_really_inlines_chunks(kerchunk_file):
    refs = kerchunk_refs(kerchunk_file, inline_threshold=300)["refs"]
    assert any(isinstance(v, str) and not k.endswith((".zarray", ".zattrs", ".zgroup"))
               for k, v in refs.items())
    index = refindex.open_store(kerchunk_refs(kerchunk_file, inline_threshold=300)).index
    assert index.arrays["plain"].chunks.inline_bytes() == 240


def test_refindex_reads_a_kerchunk_document_given_as_a_dict(kerchunk_file):
    group = zarr.open_group(refindex.open_store(kerchunk_refs(kerchunk_file)), mode="r",
                            zarr_format=2)
    assert_arrays_match_h5py(kerchunk_file, group, array_names(group))


def test_refindex_reads_a_version_0_kerchunk_sidecar(kerchunk_file, tmp_path):
    sidecar = tmp_path / "v0.json"
    sidecar.write_text(json.dumps(kerchunk_refs(kerchunk_file)["refs"]))
    group = zarr.open_group(refindex.open_store(sidecar), mode="r", zarr_format=2)
    assert_arrays_match_h5py(kerchunk_file, group, array_names(group))


def test_xarray_reads_kerchunk_sidecar_raw_values_like_h5py(netcdf_file, tmp_path):
    sidecar = tmp_path / "kerchunk.json"
    sidecar.write_text(json.dumps(kerchunk_refs(netcdf_file)))
    ds = xr.open_dataset(sidecar, engine="refindex", decode_cf=False)
    datasets = h5_datasets(netcdf_file)
    for name, variable in ds.variables.items():
        assert_same_values(expected_values(datasets[name]), variable.values, name)


def test_xarray_decodes_kerchunk_sidecar_as_kerchunks_own_engine_does(netcdf_file, tmp_path):
    # kerchunk moves _FillValue into the Zarr fill_value: masking must follow it.
    sidecar = tmp_path / "kerchunk.json"
    sidecar.write_text(json.dumps(kerchunk_refs(netcdf_file)))
    ours = xr.open_dataset(sidecar, engine="refindex")
    theirs = xr.open_dataset(str(sidecar), engine="kerchunk")
    xr.testing.assert_identical(ours, theirs)
    assert ours["temp"].isnull().any()


def test_kerchunk_fill_value_masks_like_netcdf4(netcdf_file, tmp_path):
    sidecar = tmp_path / "kerchunk.json"
    sidecar.write_text(json.dumps(kerchunk_refs(netcdf_file)))
    ours = xr.open_dataset(sidecar, engine="refindex")
    reference = xr.open_dataset(netcdf_file, engine="netcdf4")
    xr.testing.assert_identical(ours["temp"], reference["temp"])


def test_refindex_reads_kerchunk_multizarr_combined_references(tmp_path):
    import netCDF4

    parts = []
    for i in range(2):
        path = tmp_path / f"part{i}.nc"
        with netCDF4.Dataset(path, "w") as nc:
            nc.createDimension("time", None)
            nc.createDimension("x", 4)
            time = nc.createVariable("time", "f8", ("time",))
            time.units = "days since 2000-01-01"
            time[:] = np.arange(3) + 3 * i
            values = nc.createVariable("v", "f4", ("time", "x"), zlib=True, chunksizes=(1, 4))
            values[:] = np.arange(12, dtype="f4").reshape(3, 4) + 100 * i
        parts.append(kerchunk_refs(path, inline_threshold=0))
    combined = MultiZarrToZarr(parts, concat_dims=["time"], identical_dims=["x"]).translate()
    sidecar = tmp_path / "combined.json"
    sidecar.write_text(json.dumps(combined))

    group = zarr.open_group(refindex.open_store(sidecar), mode="r", zarr_format=2)
    expected = np.concatenate([np.arange(12, dtype="f4").reshape(3, 4) + 100 * i
                               for i in range(2)])
    np.testing.assert_array_equal(group["v"][...], expected)
    ds = xr.open_dataset(sidecar, engine="refindex")
    assert ds.sizes["time"] == 6
    np.testing.assert_array_equal(ds["time"].values,
                                  np.datetime64("2000-01-01") + np.arange(6).astype("m8[D]"))
    with h5py.File(tmp_path / "part1.nc", "r") as f:
        np.testing.assert_array_equal(ds["v"].values[3:], f["v"][...])
