"""Corrupt, truncated or inexpressible NetCDF3 files give a clear, typed error that names the
file and what is wrong (never a half-right index)."""

from __future__ import annotations

import struct

import pytest

from refindex.errors import ContainerError, UnsupportedFeatureError
from refindex.scan import ScanOptions, scan
from tests.scan import nc3files
from tests.scan.nc3files import handmade

FLOAT, SHORT, UBYTE = 5, 3, 7


def header_size(dims, variables, **kwargs) -> int:
    """Bytes of the header ``handmade`` writes for these arguments."""
    return len(handmade(dims, variables, **kwargs))


def scan_bytes(tmp_path, data: bytes, **options):
    path = tmp_path / "file.nc"
    path.write_bytes(data)
    return path, scan(path, ScanOptions(**options))


def assert_container_error(tmp_path, data: bytes, *phrases: str) -> None:
    path = tmp_path / "bad.nc"
    path.write_bytes(data)
    with pytest.raises(ContainerError) as caught:
        scan(path)
    message = str(caught.value)
    assert str(path) in message
    for phrase in phrases:
        assert phrase in message, message


def test_handmade_file_scans(tmp_path):
    """The reference point for the corruptions below: the same file, intact, scans."""
    dims, variables = [("x", 3)], [("a", [0], FLOAT, 0)]
    begin = header_size(dims, variables)
    _, result = scan_bytes(tmp_path, handmade(dims, [("a", [0], FLOAT, begin)], data_size=12))
    assert result.index.arrays["a"].chunks.get(0).offset == begin


def test_truncated_header(tmp_path):
    data = handmade([("x", 3)], [("a", [0], FLOAT, 0)])
    assert_container_error(tmp_path, data[:30], "NetCDF3 header", "truncated")


def test_data_past_the_end_of_a_truncated_file_names_the_variable(tmp_path):
    dims, variables = [("x", 3)], [("a", [0], FLOAT, 0)]
    begin = header_size(dims, variables)
    data = handmade(dims, [("a", [0], FLOAT, begin)], data_size=8)
    assert_container_error(tmp_path, data, "'a'", f"ends at byte {begin + 12}", "truncated")


def test_records_past_the_end_of_a_truncated_file(tmp_path):
    path = tmp_path / "records.nc"
    nc3files.record_variables(path, "NETCDF3_CLASSIC", ("i2", "f4"), records=5)
    assert_container_error(tmp_path, path.read_bytes()[:-3], "'v_f4'", "truncated")


def test_wrong_list_tag(tmp_path):
    data = bytearray(handmade([("x", 3)], []))
    data[8:12] = struct.pack(">I", 0x0B)  # the dimension list tagged as variables
    assert_container_error(tmp_path, bytes(data), "byte 8", "dimension list tag")


def test_count_larger_than_the_file(tmp_path):
    data = bytearray(handmade([("x", 3)], []))
    data[12:16] = struct.pack(">I", 0x7FFFFFFF)
    assert_container_error(tmp_path, bytes(data), "2147483647 dimensions", "left in the file")


def test_unknown_type_code(tmp_path):
    assert_container_error(tmp_path, handmade([("x", 3)], [("a", [0], 99, 100)]),
                           "variable 'a'", "unknown type code 99")


def test_cdf5_type_in_a_classic_file(tmp_path):
    assert_container_error(tmp_path, handmade([("x", 3)], [("a", [0], UBYTE, 100)]),
                           "unknown type code 7 for CDF-1")


def test_dimension_id_out_of_range(tmp_path):
    assert_container_error(tmp_path, handmade([("x", 3)], [("a", [4], FLOAT, 100)],
                                              data_size=100), "'a'", "dimension id 4")


def test_unlimited_dimension_not_first(tmp_path):
    data = handmade([("x", 3), ("t", 0)], [("a", [0, 1], FLOAT, 100)], data_size=100)
    assert_container_error(tmp_path, data, "'a'", "unlimited dimension on axis 1")


def test_two_unlimited_dimensions(tmp_path):
    data = handmade([("t", 0), ("u", 0)], [("a", [0], FLOAT, 100)], data_size=100)
    assert_container_error(tmp_path, data, "more than one unlimited dimension", "'t', 'u'")


def test_variable_starting_inside_the_header(tmp_path):
    data = handmade([("x", 3)], [("a", [0], FLOAT, 8)], data_size=100)
    assert_container_error(tmp_path, data, "'a'", "starts at byte 8", "inside the")


def test_overlapping_variables(tmp_path):
    data = handmade([("x", 3)], [("a", [0], FLOAT, 200), ("b", [0], FLOAT, 208)],
                    data_size=200)
    assert_container_error(tmp_path, data, "'b' starts at byte 208", "inside variable 'a'",
                           "ends at byte 212")


def test_record_data_before_the_fixed_data_ends(tmp_path):
    data = handmade([("t", 0), ("x", 3)], [("a", [1], FLOAT, 200), ("r", [0, 1], FLOAT, 204)],
                    numrecs=1, data_size=200)
    assert_container_error(tmp_path, data, "'r' starts at byte 204", "inside variable 'a'")


def test_variable_named_twice(tmp_path):
    data = handmade([("x", 3)], [("a", [0], SHORT, 200), ("a", [0], SHORT, 208)],
                    data_size=200)
    assert_container_error(tmp_path, data, "'a' twice")


def test_empty_name(tmp_path):
    assert_container_error(tmp_path, handmade([("", 3)], []), "empty name")


def test_variable_name_zarr_cannot_use_is_unsupported(tmp_path):
    dims, variables = [("x", 3)], [("a/b", [0], FLOAT, 0), ("c", [0], FLOAT, 0)]
    begin = header_size(dims, variables)
    data = handmade(dims, [("a/b", [0], FLOAT, begin), ("c", [0], FLOAT, begin + 12)],
                    data_size=24)
    path = tmp_path / "slash.nc"
    path.write_bytes(data)
    with pytest.raises(UnsupportedFeatureError, match="'a/b'.*'/'"):
        scan(path, ScanOptions(on_unsupported="error"))
    result = scan(path)
    assert list(result.index.arrays) == ["c"]
    assert list(result.left_out) == ["a/b"] and "'/'" in result.left_out["a/b"]


def test_an_hdf5_signature_inside_netcdf3_data_does_not_make_it_hdf5():
    from refindex.scan import HDF5_SIGNATURE, container_kind

    head = bytearray(b"CDF\x01" + bytes(70000))
    head[512:520] = HDF5_SIGNATURE  # e.g. variable data that happens to spell it
    assert container_kind(bytes(head)) == "netcdf3"
    assert container_kind(bytes(512) + HDF5_SIGNATURE) == "hdf5"
