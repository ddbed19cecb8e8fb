"""TIFF files through the commands that work on any container: collections (tiles of a
plate on S3 combined along a new dimension), ``validate`` and ``convert`` to kerchunk —
nothing in them knows TIFF; the scanner protocol is enough. (``pack`` packs Zarr directory
stores, not containers, so it has no TIFF case.)"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import zarr

import refindex
from refindex import load_index, scan, validate, write_index
from refindex.cli import main
from refindex.collection import scan_collection
from refindex.combine import CombineOptions
from refindex.errors import RefindexError
from refindex.io import ReadOptions
from tests.scan import tifffiles

FAST = ReadOptions(retries=1, backoff_base=0.01, backoff_max=0.05, timeout=10)


def test_a_collection_of_tiffs_on_s3_combines_along_a_new_dimension(s3_env, s3_bucket,
                                                                    tmp_path):
    local = []
    for number in range(3):
        data = tifffiles.values("u2", (20, 30)) + number
        local.append(tifffiles.write(tmp_path / f"well{number:02d}.tif", data, tile=(16, 16),
                                     compression="zlib", predictor=2))
        s3_env.upload(local[-1], s3_bucket, f"plate/{local[-1].name}")
    report = scan_collection([f"s3://{s3_bucket}/plate/"], tmp_path / "coll", jobs=1,
                             read_options=FAST, combine_options=CombineOptions(
                                 new_dims=(("well", r"well(\d+)"),)))
    assert (report.listed, report.scanned, report.failed) == (3, 3, [])
    expected = np.stack([tifffiles.read(path) for path in local])
    with xr.open_dataset(tmp_path / "coll", engine="refindex") as ds:
        assert list(ds["0"].dims) == ["well", "y", "x"]
        assert np.array_equal(ds["0"].values, expected)


def test_validate_checks_a_tiff_source_and_its_chunks(tmp_path):
    path = tifffiles.write(tmp_path / "v.tif", tifffiles.values("u2", (2, 30, 20)),
                           rowsperstrip=7, compression="lzw")
    sidecar = tmp_path / "v.refs.json"
    write_index(scan(path).index, sidecar)
    report = validate(sidecar, deep=True)
    assert [str(check.status) for check in report.sources] == ["ok"] and report.ok
    tifffiles.truncate(path, path.stat().st_size - 2)
    assert [str(check.status) for check in validate(sidecar).sources] == ["resized"]


def test_scan_and_convert_to_kerchunk_on_the_command_line(tmp_path):
    path = tifffiles.write(tmp_path / "c.tif", tifffiles.values("f4", (3, 32, 48)),
                           tile=(16, 16), compression="zlib", predictor=3, byteorder=">")
    native, kerchunk = tmp_path / "c.refs.json", tmp_path / "c.kerchunk.json"
    assert main(["scan", str(path), "-o", str(native)]) == 0
    assert main(["convert", "--format", "kerchunk", str(native), str(kerchunk)]) == 0
    group = zarr.open_group(refindex.open_store(kerchunk), mode="r", zarr_format=2)
    assert np.array_equal(group["0"][...], tifffiles.read(path), equal_nan=True)
    assert load_index(kerchunk).arrays["0"].zarray["filters"][0]["predictor"] == 3


def test_strips_that_do_not_divide_the_height_cannot_become_kerchunk(tmp_path):
    """kerchunk JSON has no irregular grids: the conversion says so instead of padding."""
    path = tifffiles.write(tmp_path / "s.tif", tifffiles.values("u1", (30, 20)),
                           rowsperstrip=7)
    native = tmp_path / "s.refs.json"
    write_index(scan(path).index, native)
    with pytest.raises(RefindexError, match="'0'"):
        write_index(load_index(native), tmp_path / "s.kerchunk.json", "kerchunk")
