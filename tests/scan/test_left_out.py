"""What a scan cannot index exactly is left out, not fatal: the rest of the container is
indexed and reads as h5py reads it, the arrays left out are recorded with the reason (in the
Index, both sidecar formats, ``refindex inspect`` and the scan's report, exit code 4), and
reading one is an error naming it. ``--strict`` / ``on_unsupported="error"`` makes it fatal."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import xarray as xr
import zarr
from h5py import h5d, h5s, h5t

import refindex
from refindex.cli import main
from refindex.errors import UnsupportedFeatureError
from refindex.scan import ScanOptions, scan
from refindex.sidecar import write_index
from tests.roundtrip import assert_zarr_matches, scan_to_sidecar


def _quadruple_float() -> h5t.TypeFloatID:
    """IEEE binary128, which h5py cannot read on a platform whose long double is x87's."""
    file_type = h5t.IEEE_F64LE.copy()
    file_type.set_size(16)
    file_type.set_precision(128)
    file_type.set_fields(127, 112, 15, 0, 112)
    file_type.set_ebias(16383)
    return file_type


@pytest.fixture
def mixed(tmp_path):
    """Readable arrays beside one h5py cannot read and one too big to inline at 1000 bytes."""
    path = tmp_path / "mixed.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("values", data=np.arange(100.0), chunks=(10,))
        f.create_dataset("names", data=[f"station {i}" for i in range(200)],
                         dtype=h5py.string_dtype())
        h5d.create(f.id, b"quad", _quadruple_float(), h5s.create_simple((3,)))
        f.create_group("g").create_dataset("counts", data=np.arange(5, dtype="u2"))
    return path


OPTIONS = ScanOptions(max_inline=1000)
LEFT_OUT = ("names", "quad")


def test_scan_indexes_the_rest_and_records_what_it_left_out(mixed):
    result = scan(mixed, OPTIONS)
    assert sorted(result.index.arrays) == ["g/counts", "values"]
    assert sorted(result.left_out) == list(LEFT_OUT)
    assert result.left_out is result.index.left_out
    assert "variable-length strings" in result.left_out["names"]
    assert "--max-inline" in result.left_out["names"]
    assert "16-byte float" in result.left_out["quad"]
    assert "h5py cannot read" in result.left_out["quad"]


def test_strict_scan_stops_at_an_array_it_cannot_index(mixed):
    with pytest.raises(UnsupportedFeatureError) as caught:
        scan(mixed, OPTIONS.replace(on_unsupported="error"))
    assert caught.value.dataset in ("/names", "/quad")
    assert str(mixed) in str(caught.value)


@pytest.mark.parametrize("format", ["native", "kerchunk"])
def test_left_out_arrays_are_kept_in_the_sidecar_and_the_rest_reads_as_h5py(mixed, tmp_path,
                                                                            format):
    sidecar = scan_to_sidecar(mixed, tmp_path, format, options=OPTIONS)
    index = refindex.load_index(sidecar)
    assert index.left_out == scan(mixed, OPTIONS).left_out
    assert_zarr_matches(mixed, sidecar, skip=frozenset(LEFT_OUT))


def test_native_sidecar_with_left_out_arrays_is_version_1_2(mixed, tmp_path):
    sidecar = scan_to_sidecar(mixed, tmp_path, options=OPTIONS)
    assert '"refindex_sidecar":"1.2"' in sidecar.read_text()


@pytest.mark.parametrize("name", LEFT_OUT)
def test_opening_a_left_out_array_is_an_error_naming_it(mixed, tmp_path, name):
    sidecar = scan_to_sidecar(mixed, tmp_path, options=OPTIONS)
    store = refindex.open_store(sidecar)
    with pytest.raises(UnsupportedFeatureError, match=f"'/{name}': left out when the "
                                                      "container was scanned"):
        zarr.open_array(store, path=name, mode="r", zarr_format=2)


def test_xarray_opens_the_rest(mixed, tmp_path):
    sidecar = scan_to_sidecar(mixed, tmp_path, options=OPTIONS)
    ds = xr.open_dataset(sidecar, engine="refindex")
    assert list(ds.data_vars) == ["values"]
    with h5py.File(mixed) as f:
        np.testing.assert_array_equal(ds["values"].values, f["values"][...])


def test_an_index_without_left_out_arrays_has_none(tmp_path):
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(3)
    sidecar = scan_to_sidecar(path, tmp_path)
    assert refindex.load_index(sidecar).left_out == {}
    assert '"left_out":' not in sidecar.read_text()


# --- on the command line ---------------------------------------------------------------------


def test_cli_scan_reports_each_left_out_array_and_exits_4(mixed, tmp_path, capsys):
    out = tmp_path / "out.json"
    assert main(["scan", str(mixed), "--max-inline", "1000", "-o", str(out)]) == 4
    err = capsys.readouterr().err
    assert "left out: /names: variable-length strings" in err
    assert "left out: /quad: 16-byte float" in err
    assert "2 arrays left out (exit 4)" in err
    assert sorted(refindex.load_index(out).arrays) == ["g/counts", "values"]


def test_cli_strict_scan_fails_in_one_line_and_writes_nothing(mixed, tmp_path, capsys):
    out = tmp_path / "out.json"
    assert main(["scan", str(mixed), "--max-inline", "1000", "--strict", "-o", str(out)]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(mixed) in lines[0]
    assert not out.exists()


def test_cli_strict_and_skip_unsupported_do_not_go_together(mixed, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["scan", str(mixed), "--strict", "--skip-unsupported"])
    assert caught.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


def test_cli_inspect_lists_left_out_arrays(mixed, tmp_path, capsys):
    sidecar = tmp_path / "out.json"
    write_index(scan(mixed, OPTIONS).index, sidecar)
    assert main(["inspect", str(sidecar)]) == 0
    out = " ".join(capsys.readouterr().out.split())  # Rich wraps long lines
    assert "left out: /names: variable-length strings" in out
    assert "left out: /quad: 16-byte float" in out
    assert "2 arrays, 2 left out" in out


def test_cli_collection_scan_reports_left_out_arrays_per_member_and_exits_4(mixed, tmp_path,
                                                                           capsys):
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = np.arange(3)
    code = main(["scan", str(mixed), str(plain), "--max-inline", "1000", "-j", "1",
                 "-o", str(tmp_path / "collection")])
    err = capsys.readouterr().err
    assert code == 4
    assert f"left out: {mixed}: /names: variable-length strings" in err
    assert f"left out: {mixed}: /quad" in err and f"{plain}: /" not in err


def test_nested_variable_length_data_larger_than_max_inline_is_left_out(tmp_path):
    path = tmp_path / "records.h5"
    dtype = np.dtype([("id", "<i4"), ("name", h5py.string_dtype())])
    with h5py.File(path, "w") as f:
        f.create_dataset("small", data=np.array([(1, "a")], dtype=dtype))
        # 20 records look small (their strings live in the heap); encoded, they are not.
        f.create_dataset("large", data=np.array([(i, "x" * 100) for i in range(20)],
                                                dtype=dtype))
    sidecar = scan_to_sidecar(path, tmp_path, options=OPTIONS)
    index = refindex.load_index(sidecar)
    assert list(index.arrays) == ["small"] and list(index.left_out) == ["large"]
    assert "bytes encoded" in index.left_out["large"]
    assert "--max-inline" in index.left_out["large"]
    assert_zarr_matches(path, sidecar, skip=frozenset({"large"}))
