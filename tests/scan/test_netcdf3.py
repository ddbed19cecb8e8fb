"""NetCDF3 files (classic, 64-bit offset, CDF-5) scanned by refindex and read back through
zarr and xarray equal what netCDF4-python reads, bit for bit (NaN-aware), attributes included;
records are exact chunks; a remote scan reads only the header."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr
import zarr

import refindex
from refindex.index import Index
from refindex.io import ReadOptions
from refindex.scan import blocks, scan
from refindex.scan.blocks import CONTIGUOUS_BLOCK
from refindex.scan.json_values import float_from_json
from refindex.store.tuning import zarr_concurrency
from tests.roundtrip import scan_to_sidecar
from tests.scan import nc3files
from tests.scan.nc3files import FORMATS

KiB = 1024


def assert_zarr_matches_netcdf4(nc_path: Path, sidecar) -> None:
    """Every variable read through zarr equals netCDF4-python's raw values (no masking or
    scaling, chars as S1) in value and stored type; dimensions and attributes equal too."""
    store = refindex.open_store(sidecar)
    group = zarr.open_group(store, mode="r", zarr_format=2)
    with netCDF4.Dataset(nc_path) as nc:
        nc.set_auto_maskandscale(False)
        nc.set_auto_chartostring(False)
        assert sorted(group.array_keys()) == sorted(nc.variables)
        assert_same_attributes(dict(group.attrs), nc, {}, "global")
        for name, var in nc.variables.items():
            array = group[name]
            expected = np.asarray(var[...])
            actual = np.asarray(array[...])
            assert array.dtype == expected.dtype.newbyteorder(">"), name
            assert actual.shape == expected.shape, name
            assert actual.astype(expected.dtype).tobytes() == expected.tobytes(), name
            attrs = dict(array.attrs)
            assert attrs.pop("_ARRAY_DIMENSIONS") == list(var.dimensions), name
            assert_same_attributes(attrs, var, store.index.arrays[name].attr_dtypes, name)


def assert_same_attributes(attrs: dict, obj, dtypes: dict[str, str], where: str) -> None:
    """``attrs`` (JSON from a sidecar, ``dtypes`` beside it) hold exactly ``obj``'s netCDF
    attributes: text equal, numbers equal in value and type (NaN-aware)."""
    assert sorted(attrs) == sorted(obj.ncattrs()), where
    for name in obj.ncattrs():
        expected = obj.getncattr(name)
        if isinstance(expected, str):
            assert attrs[name] == expected, f"{where}.{name}"
            continue
        expected = np.asarray(expected)
        if name in dtypes:
            assert np.dtype(dtypes[name]) == expected.dtype, f"{where}.{name}"
        decoded = np.asarray(_from_json(attrs[name], expected.dtype), dtype=expected.dtype)
        assert decoded.reshape(-1).tobytes() == expected.reshape(-1).tobytes(), f"{where}.{name}"


def _from_json(encoded, dtype: np.dtype):
    if isinstance(encoded, list):
        return [_from_json(item, dtype) for item in encoded]
    return float_from_json(encoded) if dtype.kind == "f" else encoded


def assert_xarray_matches_netcdf4(nc_path: Path, sidecar, **open_kwargs) -> None:
    """engine="refindex" gives the Dataset engine="netcdf4" gives, variable dtypes included."""
    expected = xr.open_dataset(nc_path, engine="netcdf4", **open_kwargs).load()
    actual = xr.open_dataset(sidecar, engine="refindex", **open_kwargs).load()
    xr.testing.assert_identical(actual, expected)
    for name, variable in expected.variables.items():
        assert actual[name].dtype == variable.dtype, name


def written(factory, tmp_path: Path, fmt: str, *args, **kwargs) -> Path:
    path = tmp_path / f"{factory.__name__}.nc"
    factory(path, fmt, *args, **kwargs)
    return path


def record_stride(index: Index, name: str) -> int:
    """Bytes between the first two records of a record variable (its first two chunks)."""
    offsets = index.arrays[name].chunks.offset
    return int(offsets[1] - offsets[0])


# -- values and attributes ----------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_zarr_reads_what_netcdf4_reads(fmt, tmp_path):
    path = written(nc3files.every_type, tmp_path, fmt)
    assert_zarr_matches_netcdf4(path, scan_to_sidecar(path, tmp_path))


@pytest.mark.parametrize("fmt", FORMATS)
def test_xarray_decodes_what_netcdf4_decodes(fmt, tmp_path):
    path = written(nc3files.every_type, tmp_path, fmt)
    sidecar = scan_to_sidecar(path, tmp_path)
    assert_xarray_matches_netcdf4(path, sidecar)
    assert_xarray_matches_netcdf4(path, sidecar, decode_cf=False)


def test_kerchunk_sidecar_reads_the_same(tmp_path):
    path = written(nc3files.every_type, tmp_path, "NETCDF3_64BIT_DATA")
    sidecar = scan_to_sidecar(path, tmp_path, format="kerchunk")
    assert_zarr_matches_netcdf4(path, sidecar)
    assert_xarray_matches_netcdf4(path, sidecar)


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("factory", [nc3files.scipy_file, nc3files.scipy_one_record_variable])
def test_files_written_by_scipy_read_the_same(factory, version, tmp_path):
    pytest.importorskip("scipy")
    path = tmp_path / "scipy.nc"
    factory(path, version)
    sidecar = scan_to_sidecar(path, tmp_path)
    assert_zarr_matches_netcdf4(path, sidecar)
    assert_xarray_matches_netcdf4(path, sidecar)


def test_arrays_keep_the_stored_big_endian_types(tmp_path):
    path = written(nc3files.every_type, tmp_path, "NETCDF3_64BIT_DATA")
    arrays = scan(path).index.arrays
    stored = {name: arrays[f"fixed_{name}"].zarray["dtype"] for name in nc3files.numeric_types(
        "NETCDF3_64BIT_DATA")}
    assert stored == {"i1": "|i1", "i2": ">i2", "i4": ">i4", "f4": ">f4", "f8": ">f8",
                      "u1": "|u1", "u2": ">u2", "u4": ">u4", "i8": ">i8", "u8": ">u8"}
    assert arrays["station"].zarray["dtype"] == "|S1"


def test_never_written_records_read_as_netcdf_fill_values(tmp_path):
    path = written(nc3files.every_type, tmp_path, "NETCDF3_64BIT_DATA")
    index = scan(path).index
    group = zarr.open_group(refindex.open_store(index), mode="r", zarr_format=2)
    for dtype in nc3files.numeric_types("NETCDF3_64BIT_DATA"):
        default = netCDF4.default_fillvals[dtype]
        assert index.arrays[f"record_{dtype}"].zarray["fill_value"] == pytest.approx(default)
        assert (group[f"record_{dtype}"][4:] == np.asarray(default, dtype)).all(), dtype
    assert index.arrays["with_fill"].zarray["fill_value"] == -999.0
    assert index.arrays["station"].zarray["fill_value"] is None  # char fill is a NUL byte


def test_coordinate_and_dimension_names_reach_xarray(tmp_path):
    path = written(nc3files.every_type, tmp_path, "NETCDF3_CLASSIC")
    ds = xr.open_dataset(scan(path).index, engine="refindex")
    assert set(ds.coords) == {"time", "y", "x"}
    assert ds["record_f4"].dims == ("time", "odd")
    assert ds.sizes["time"] == 6
    assert ds["station"].values.tolist() == [b"alpha", b"beta", b"gamma", b"d", b"epsilo"]


# -- records and the unlimited dimension ----------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", ["i1", "S1", "i2", "f4", "f8"])
def test_a_single_record_variable_has_unpadded_records(fmt, dtype, tmp_path):
    path = written(nc3files.record_variables, tmp_path, fmt, (dtype,), records=9, inner=3)
    index = scan(path).index
    assert record_stride(index, f"v_{dtype}") == 3 * np.dtype(dtype).itemsize
    assert_zarr_matches_netcdf4(path, index)


@pytest.mark.parametrize("fmt", FORMATS)
def test_several_record_variables_have_padded_records(fmt, tmp_path):
    dtypes = ("i1", "S1", "i2", "f8")
    path = written(nc3files.record_variables, tmp_path, fmt, dtypes, records=7, inner=3)
    index = scan(path).index
    padded = sum(-(-3 * np.dtype(d).itemsize // 4) * 4 for d in dtypes)  # 4 + 4 + 8 + 24
    assert {record_stride(index, f"v_{d}") for d in dtypes} == {padded}
    assert_zarr_matches_netcdf4(path, index)
    assert_xarray_matches_netcdf4(path, index)


@pytest.mark.parametrize("records", [0, 1, 13])
def test_unlimited_dimension_with_any_number_of_records(records, tmp_path):
    path = written(nc3files.record_variables, tmp_path, "NETCDF3_CLASSIC", ("i2", "f4"),
                   records=records, inner=5)
    index = scan(path).index
    node = index.arrays["v_i2"]
    assert node.zarray["shape"] == [records, 5]
    assert node.zarray["chunks"] == [1, 5]
    assert node.chunks.grid == (records, 1)
    assert_zarr_matches_netcdf4(path, index)
    assert_xarray_matches_netcdf4(path, index)


def test_each_record_is_one_exact_chunk(tmp_path):
    path = written(nc3files.record_variables, tmp_path, "NETCDF3_64BIT_OFFSET", ("i2", "f8"),
                   records=4, inner=5)
    index = scan(path).index
    with netCDF4.Dataset(path) as nc:
        expected = nc["v_f8"][...].astype(">f8")
    table = index.arrays["v_f8"].chunks
    raw = path.read_bytes()
    for record in range(4):
        chunk = table.get(record)
        assert chunk.length == 5 * 8
        assert raw[chunk.offset:chunk.offset + chunk.length] == expected[record].tobytes()


def test_streaming_record_count_comes_from_the_file_size(tmp_path):
    """A header whose record count says "streaming" (0xFFFFFFFF) holds as many records as
    the file has whole records after the first record variable's start."""
    path = written(nc3files.record_variables, tmp_path, "NETCDF3_CLASSIC", ("i2", "f4"),
                   records=6, inner=5)
    streaming = tmp_path / "streaming.nc"
    raw = bytearray(path.read_bytes())
    assert struct.unpack(">I", raw[4:8]) == (6,)
    raw[4:8] = b"\xff\xff\xff\xff"
    streaming.write_bytes(bytes(raw))
    index = scan(streaming).index
    assert index.arrays["v_f4"].zarray["shape"] == [6, 5]
    group = zarr.open_group(refindex.open_store(index), mode="r", zarr_format=2)
    with netCDF4.Dataset(path) as nc:
        assert group["v_f4"][...].tobytes() == nc["v_f4"][...].astype(">f4").tobytes()


def test_file_without_variables_is_an_empty_group(tmp_path):
    path = tmp_path / "empty.nc"
    with netCDF4.Dataset(path, "w", format="NETCDF3_CLASSIC") as nc:
        nc.title = "nothing here"
    index = scan(path).index
    assert (index.arrays, index.groups) == ({}, {"": {"title": "nothing here"}})


# -- large variables ------------------------------------------------------------------------


def test_large_variables_are_cut_into_row_blocks(tmp_path):
    path = written(nc3files.large_variables, tmp_path, "NETCDF3_64BIT_OFFSET")
    index = scan(path).index
    big, frames = index.arrays["big"], index.arrays["frames"]
    rows = big.zarray["chunks"][0]
    assert rows * 1100 * 8 <= CONTIGUOUS_BLOCK < 1031 * 1100 * 8
    assert big.chunks.grid == (math.ceil(1031 / rows), 1)
    assert frames.zarray["chunks"] == [1, 512, 1100]
    assert frames.chunks.grid == (2, 2, 1)
    assert_zarr_matches_netcdf4(path, index)


def test_row_blocks_stay_inside_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(blocks, "CONTIGUOUS_BLOCK", 4 * KiB)  # where row_blocks reads it
    path = written(nc3files.row_blocks, tmp_path, "NETCDF3_CLASSIC")
    index = scan(path).index
    chunks = {name: (node.zarray["chunks"], node.chunks.grid)
              for name, node in index.arrays.items()}
    assert chunks == {"fixed": ([256, 2], (3, 1)),  # the third block reads on past it
                      "divided": ([1, 256, 2], (3, 2, 1)),
                      "whole": ([1, 521, 2], (3, 1, 1))}
    for node in index.arrays.values():
        assert (node.chunks.offset + node.chunks.length).max() <= path.stat().st_size
    assert_zarr_matches_netcdf4(path, index)


# -- remote ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_scan_from_s3_reads_back_exactly(fmt, s3_env, s3_bucket, tmp_path):
    path = written(nc3files.every_type, tmp_path, fmt)
    sidecar = scan_to_sidecar(s3_env.upload(path, s3_bucket, path.name), tmp_path)
    assert_zarr_matches_netcdf4(path, sidecar)
    assert_xarray_matches_netcdf4(path, sidecar)


def test_remote_scan_reads_only_the_header(s3_env, s3_bucket, tmp_path):
    path = written(nc3files.large_variables, tmp_path, "NETCDF3_64BIT_DATA")
    url = s3_env.upload(path, s3_bucket, path.name)
    block = 64 * KiB
    result = scan(url, read_options=ReadOptions.from_env().replace(block_size=block))
    # The container sniff reads the first 64 KiB + 8 bytes: two blocks, header included.
    assert result.fetched <= 2 * block < path.stat().st_size / 100
    assert result.requests <= 3


@pytest.mark.slow
def test_remote_header_larger_than_one_read_is_read_in_full(s3_env, s3_bucket, tmp_path):
    path = written(nc3files.many_attributes, tmp_path, "NETCDF3_CLASSIC")
    url = s3_env.upload(path, s3_bucket, path.name)
    block = 64 * KiB
    result = scan(url, read_options=ReadOptions.from_env().replace(block_size=block))
    header_end = min(int(node.chunks.offset[0]) for node in result.index.arrays.values())
    assert header_end > 4 * block
    assert result.fetched <= header_end + 2 * block
    assert_zarr_matches_netcdf4(path, result.index)


def test_a_record_variable_is_read_in_merged_exact_ranges(http_server, tmp_path):
    """Records of one variable are ``recsize`` bytes apart: the gap between two (recsize minus
    the record) decides merging, and the merged read spans exactly first to last record."""
    path = written(nc3files.record_variables, tmp_path, "NETCDF3_CLASSIC", ("f4", "f8"),
                   records=200, inner=100)
    url = http_server.put(path.name, path.read_bytes())
    index = scan(url).index
    record, stride = 100 * 4, 400 + 800
    assert record_stride(index, "v_f4") == stride
    begin = int(index.arrays["v_f4"].chunks.offset[0])
    with netCDF4.Dataset(path) as nc:
        expected = nc["v_f4"][:, 7]
    for max_gap, fetches in [(stride - record, 1), (stride - record - 1, 200)]:
        http_server.log.clear()
        store = refindex.open_store(index, max_gap=max_gap, cache_size=0, readahead_size=0)
        array = zarr.open_group(store, mode="r", zarr_format=2)["v_f4"]
        with zarr_concurrency(store.zarr_concurrency):  # all 200 records asked at once
            assert array[:, 7].tobytes() == expected.astype(">f4").tobytes()
        ranges = [rng for method, _, rng in http_server.log if method == "GET"
                  and rng != "bytes=0-0"]
        assert store.engine.stats.fetches == len(ranges) == fetches
        if fetches == 1:
            assert ranges == [f"bytes={begin}-{begin + 199 * stride + record - 1}"]
