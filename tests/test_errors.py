"""Bad input fails loudly and clearly: a typed error naming the file (and the key or dataset
when there is one), in Python; one line on stderr and exit code 1 on the command line."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import xarray as xr
import zarr

import refindex
from refindex.cli import main
from refindex.errors import (
    ContainerError,
    FetchError,
    RefindexError,
    SidecarError,
    SourceChangedError,
    SourceNotFoundError,
    UnsupportedFeatureError,
)
from refindex.scan import ScanOptions, scan
from tests.roundtrip import scan_to_sidecar


def small_file(path, libver: str | None = None) -> None:
    """A chunked, compressed dataset ``a`` and a contiguous one ``b``."""
    with h5py.File(path, "w", libver=libver) as f:
        f.create_dataset("a", data=np.arange(1000.0), chunks=(100,), compression="gzip")
        f.create_dataset("b", data=np.arange(50))


def object_header_address(path, name: str) -> int:
    with h5py.File(path, "r") as f:
        return h5py.h5o.get_info(f[name].id).addr


def damaged(path, start: int, stop: int):
    """``path`` with bytes [start, stop) inverted, written next to it; the new path."""
    data = bytearray(path.read_bytes())
    data[start:stop] = bytes(b ^ 0xFF for b in data[start:stop])
    out = path.with_name(f"damaged-{start}-{stop}.h5")
    out.write_bytes(bytes(data))
    return out


def read_all(sidecar, name: str) -> np.ndarray:
    return zarr.open_group(refindex.open_store(sidecar), mode="r", zarr_format=2)[name][...]


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert code == 1
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.h5"
    small_file(path)
    return path


# --- containers that cannot be scanned ------------------------------------------------------


def test_damaged_superblock_is_a_container_error_naming_the_file(good):
    bad = damaged(good, 8, 40)
    with pytest.raises(ContainerError, match="corrupt or truncated") as caught:
        scan(bad)
    assert str(bad) in str(caught.value)


@pytest.mark.parametrize("libver", [None, "latest"])
@pytest.mark.parametrize("name", ["a", "b"])
def test_damaged_object_header_is_an_error_naming_the_dataset(tmp_path, libver, name):
    path = tmp_path / "good.h5"
    small_file(path, libver)
    address = object_header_address(path, name)
    bad = damaged(path, address + 16, address + 24)
    with pytest.raises(ContainerError) as caught:
        scan(bad)
    assert str(bad) in str(caught.value) and f"'/{name}'" in str(caught.value)


def test_damaged_chunk_index_is_an_error_naming_the_dataset(good):
    data = good.read_bytes()
    btree = data.index(b"TREE", object_header_address(good, "a"))
    bad = damaged(good, btree + 24, btree + 64)
    with pytest.raises(ContainerError, match="'/a'") as caught:
        scan(bad)
    assert str(bad) in str(caught.value)


@pytest.mark.parametrize("keep", [0.5, 0.05])
def test_truncated_file_is_a_container_error(good, keep):
    data = good.read_bytes()
    bad = good.with_name("truncated.h5")
    bad.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ContainerError, match="truncated") as caught:
        scan(bad)
    assert str(bad) in str(caught.value)


@pytest.mark.parametrize("content", [b"\x89PNG\r\n\x1a\n" + bytes(200), b"just text\n" * 20, b""],
                         ids=["png", "text", "empty"])
def test_file_that_is_not_hdf5_is_a_container_error(tmp_path, content):
    path = tmp_path / "data.h5"  # the name says HDF5; the bytes decide
    path.write_bytes(content)
    with pytest.raises(ContainerError, match="not an HDF5 or NetCDF4 file") as caught:
        scan(path)
    assert str(path) in str(caught.value)


def test_netcdf3_file_with_a_truncated_header_is_a_container_error(tmp_path):
    path = tmp_path / "classic.nc"
    path.write_bytes(b"CDF\x01" + bytes(10))
    with pytest.raises(ContainerError, match="NetCDF3 header.*truncated") as caught:
        scan(path)
    assert str(path) in str(caught.value)


def test_missing_local_file_is_source_not_found(tmp_path):
    with pytest.raises(SourceNotFoundError, match="no such file") as caught:
        scan(tmp_path / "missing.h5")
    assert str(tmp_path / "missing.h5") in str(caught.value)


def test_missing_s3_object_is_source_not_found(s3_env, s3_bucket):
    url = f"s3://{s3_bucket}/missing.h5"
    with pytest.raises(SourceNotFoundError, match="not found") as caught:
        scan(url)
    assert url in str(caught.value)


# --- sidecars that cannot be read -----------------------------------------------------------


@pytest.fixture
def sidecar_doc(good, tmp_path):
    return json.loads(scan_to_sidecar(good, tmp_path, "kerchunk").read_text())


def zarray_changed(doc: dict, **changes) -> dict:
    meta = {**json.loads(doc["refs"]["a/.zarray"]), **changes}
    meta = {k: v for k, v in meta.items() if v is not None}
    return {**doc, "refs": {**doc["refs"], "a/.zarray": json.dumps(meta)}}


MALFORMED = {
    "not_json": lambda doc: "{refs: nope",
    "truncated": lambda doc: json.dumps(doc)[: len(json.dumps(doc)) // 2],
    "empty": lambda doc: "",
    "not_a_map": lambda doc: "[1, 2, 3]",
    "wrong_version": lambda doc: json.dumps({**doc, "version": 7}),
    "version_without_refs": lambda doc: json.dumps({"version": 1, "templates": {}}),
    "no_zarr_keys": lambda doc: json.dumps({"hello": "world"}),
    "zarray_without_shape": lambda doc: json.dumps(zarray_changed(doc, shape=None)),
    "zarray_bad_chunks": lambda doc: json.dumps(zarray_changed(doc, chunks=["x"])),
    "zarray_not_json": lambda doc: json.dumps({**doc, "refs": {**doc["refs"],
                                                               "a/.zarray": "{oops"}}),
    "reference_of_two": lambda doc: json.dumps({**doc, "refs": {**doc["refs"],
                                                                "a/0": ["f.h5", 8]}}),
    "negative_offset": lambda doc: json.dumps({**doc, "refs": {**doc["refs"],
                                                               "a/0": ["f.h5", -8, 10]}}),
    "chunk_outside_grid": lambda doc: json.dumps({**doc, "refs": {**doc["refs"],
                                                                  "a/99": ["f.h5", 0, 10]}}),
    "unknown_template": lambda doc: json.dumps({**doc, "templates": {}}),
    "bad_provenance": lambda doc: json.dumps({**doc, "refindex": {"sources": [{"uri": "x"}]}}),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_sidecar_is_a_sidecar_error_naming_the_file(case, sidecar_doc, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(MALFORMED[case](sidecar_doc))
    with pytest.raises(SidecarError) as caught:
        refindex.open_store(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("case, key", [("zarray_without_shape", "a/.zarray"),
                                       ("reference_of_two", "a/0"),
                                       ("chunk_outside_grid", "a/99")])
def test_malformed_sidecar_error_names_the_key(case, key, sidecar_doc, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(MALFORMED[case](sidecar_doc))
    with pytest.raises(SidecarError, match=key):
        refindex.open_store(path)


def test_missing_sidecar_is_source_not_found(tmp_path):
    with pytest.raises(SourceNotFoundError, match="sidecar not found"):
        refindex.open_store(tmp_path / "nothing.json")


# --- sidecars whose sources no longer fit -------------------------------------------------


def test_chunk_past_the_end_of_the_source_is_a_fetch_error_not_fill_values(good, sidecar_doc,
                                                                           tmp_path):
    url, _, length = sidecar_doc["refs"]["a/3"]
    sidecar_doc["refs"]["a/3"] = [url, good.stat().st_size + 1000, length]
    path = tmp_path / "past.json"
    path.write_text(json.dumps(sidecar_doc))
    with pytest.raises(FetchError) as caught:
        read_all(path, "a")
    message = str(caught.value)
    assert str(good) in message and "a/3" in message
    assert f"[{good.stat().st_size + 1000}," in message


def test_chunks_before_one_past_the_end_still_read(good, sidecar_doc, tmp_path):
    url, _, length = sidecar_doc["refs"]["a/3"]
    sidecar_doc["refs"]["a/3"] = [url, good.stat().st_size + 1000, length]
    path = tmp_path / "past.json"
    path.write_text(json.dumps(sidecar_doc))
    group = zarr.open_group(refindex.open_store(path), mode="r", zarr_format=2)
    np.testing.assert_array_equal(group["a"][:300], np.arange(300.0))


def test_chunk_past_the_end_fails_through_xarray_too(good, sidecar_doc, tmp_path):
    url, _, length = sidecar_doc["refs"]["a/3"]
    sidecar_doc["refs"]["a/3"] = [url, 10**6, length]
    path = tmp_path / "past.json"
    path.write_text(json.dumps(sidecar_doc))
    ds = xr.open_dataset(path, engine="refindex")
    with pytest.raises(FetchError, match="a/3"):
        ds["a"].values  # noqa: B018


def test_deleted_source_is_source_not_found_naming_the_key(good, tmp_path):
    sidecar = scan_to_sidecar(good, tmp_path)
    good.unlink()
    with pytest.raises(SourceNotFoundError) as caught:
        read_all(sidecar, "b")
    assert str(good) in str(caught.value) and "b/0" in str(caught.value)


def test_source_changed_on_s3_is_source_changed_error(s3_env, s3_bucket, tmp_path):
    path = tmp_path / "data.h5"
    small_file(path)
    url = s3_env.upload(path, s3_bucket, "data.h5")
    sidecar = scan_to_sidecar(url, tmp_path)
    np.testing.assert_array_equal(read_all(sidecar, "b"), np.arange(50))

    changed = bytearray(path.read_bytes())
    changed[-8:] = bytes(8)  # same size, other bytes: only the ETag tells
    s3_env.put_bytes(bytes(changed), s3_bucket, "data.h5")
    with pytest.raises(SourceChangedError) as caught:
        read_all(sidecar, "b")
    assert url in str(caught.value) and "b/0" in str(caught.value)


def test_source_deleted_from_s3_is_source_not_found(s3_env, s3_bucket, tmp_path):
    path = tmp_path / "data.h5"
    small_file(path)
    url = s3_env.upload(path, s3_bucket, "data.h5")
    sidecar = scan_to_sidecar(url, tmp_path)
    s3_env.client().delete_object(Bucket=s3_bucket, Key="data.h5")
    with pytest.raises(SourceNotFoundError, match=r"a/\d"):
        read_all(sidecar, "a")


# --- arrays that can neither be referenced nor inlined -------------------------------------


@pytest.fixture
def big_strings(tmp_path):
    path = tmp_path / "strings.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("names", data=[f"station {i}" for i in range(1000)],
                         dtype=h5py.string_dtype())
        f.create_dataset("values", data=np.arange(10))
    return path


def test_array_too_big_to_inline_is_unsupported_naming_file_dataset_feature(big_strings):
    with pytest.raises(UnsupportedFeatureError) as caught:
        scan(big_strings, ScanOptions(max_inline=1000, on_unsupported="error"))
    error = caught.value
    assert (error.file, error.dataset) == (str(big_strings), "/names")
    assert "variable-length strings" in error.feature
    assert str(big_strings) in str(error) and "/names" in str(error)


def test_array_too_big_to_inline_is_left_out_and_recorded_by_default(big_strings):
    result = scan(big_strings, ScanOptions(max_inline=1000))
    assert list(result.index.arrays) == ["values"]
    assert list(result.left_out) == ["names"] and result.index.left_out == result.left_out
    assert "variable-length strings" in result.left_out["names"]
    assert result.skipped == []


def test_every_error_is_a_refindex_error():
    for error in (ContainerError, FetchError, SidecarError, SourceChangedError,
                  SourceNotFoundError, UnsupportedFeatureError):
        assert issubclass(error, RefindexError)


# --- the same errors on the command line ----------------------------------------------------


def test_cli_scan_of_a_non_hdf5_file_prints_one_line_and_exits_1(tmp_path, capsys):
    path = tmp_path / "image.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    code, err = run_cli(capsys, "scan", str(path), "-o", str(tmp_path / "out.json"))
    assert_one_line_error(code, err, str(path), "not an HDF5")
    assert not (tmp_path / "out.json").exists()


def test_cli_scan_of_a_damaged_file_prints_one_line_naming_the_dataset(good, tmp_path, capsys):
    address = object_header_address(good, "a")
    bad = damaged(good, address + 16, address + 24)
    code, err = run_cli(capsys, "scan", str(bad), "-o", str(tmp_path / "out.json"))
    assert_one_line_error(code, err, str(bad), "'/a'")


def test_cli_scan_of_a_missing_file_prints_one_line(tmp_path, capsys):
    code, err = run_cli(capsys, "scan", str(tmp_path / "missing.h5"))
    assert_one_line_error(code, err, "missing.h5", "no such file")


def test_cli_scan_of_a_truncated_netcdf3_file_prints_one_line(tmp_path, capsys):
    path = tmp_path / "classic.nc"
    path.write_bytes(b"CDF\x01" + bytes(10))
    code, err = run_cli(capsys, "scan", str(path))
    assert_one_line_error(code, err, str(path), "NetCDF3 header", "truncated")


def test_cli_scan_of_a_missing_s3_object_prints_one_line(s3_env, s3_bucket, capsys):
    url = f"s3://{s3_bucket}/missing.h5"
    code, err = run_cli(capsys, "scan", url)
    assert_one_line_error(code, err, url, "not found")


def test_cli_strict_unsupported_array_names_the_dataset_and_the_way_out(big_strings, capsys,
                                                                        tmp_path):
    code, err = run_cli(capsys, "scan", str(big_strings), "--max-inline", "1000", "--strict",
                        "-o", str(tmp_path / "out.json"))
    assert_one_line_error(code, err, "/names", "--max-inline")
    assert not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("flag", [[], ["--skip-unsupported"]])
def test_cli_leaves_the_array_out_reports_it_and_exits_4(big_strings, capsys, tmp_path,
                                                         flag):
    out = tmp_path / "out.json"
    code = main(["scan", str(big_strings), "--max-inline", "1000", *flag, "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 4
    assert "left out: /names: variable-length strings" in err and "--strict" in err
    index = refindex.load_index(out)
    assert list(index.arrays) == ["values"] and list(index.left_out) == ["names"]


@pytest.mark.parametrize("case", ["not_json", "reference_of_two", "bad_provenance"])
def test_cli_inspect_of_a_malformed_sidecar_prints_one_line(case, sidecar_doc, tmp_path,
                                                            capsys):
    path = tmp_path / "bad.json"
    path.write_text(MALFORMED[case](sidecar_doc))
    code, err = run_cli(capsys, "inspect", str(path))
    assert_one_line_error(code, err, str(path))


def test_cli_error_message_keeps_brackets_it_quotes(sidecar_doc, tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text(MALFORMED["reference_of_two"](sidecar_doc))
    _, err = run_cli(capsys, "inspect", str(path))
    assert "[url, offset, length]" in err


def test_cli_debug_raises_the_error_instead_of_printing_it(tmp_path):
    path = tmp_path / "text.h5"
    path.write_text("not hdf5")
    with pytest.raises(ContainerError):
        main(["--debug", "scan", str(path)])
