"""MRC files through the commands that work on any container: collections (tilt series on
S3 combined along a new dimension), ``validate`` and ``convert`` to kerchunk — nothing in
them knows MRC; the scanner protocol is enough. (``pack`` packs Zarr directory stores, not
containers, so it has no MRC case.)"""

from __future__ import annotations

import numpy as np
import xarray as xr
import zarr

import refindex
from refindex import load_index, scan, validate, write_index
from refindex.cli import main
from refindex.collection import scan_collection
from refindex.combine import CombineOptions
from refindex.io import ReadOptions
from tests.scan import mrcfiles

FAST = ReadOptions(retries=1, backoff_base=0.01, backoff_max=0.05, timeout=10)


def test_a_collection_of_tomograms_on_s3_combines_along_a_new_dimension(s3_env, s3_bucket,
                                                                         tmp_path):
    local = []
    for number in range(3):
        data = mrcfiles.values("f4", (4, 6, 8)) + number
        local.append(mrcfiles.write(tmp_path / f"ts{number:02d}.mrc", data))
        s3_env.upload(local[-1], s3_bucket, f"tomograms/{local[-1].name}")
    report = scan_collection([f"s3://{s3_bucket}/tomograms/"], tmp_path / "coll", jobs=1,
                             read_options=FAST, combine_options=CombineOptions(
                                 new_dims=(("tomogram", r"ts(\d+)"),)))
    assert (report.listed, report.scanned, report.failed) == (3, 3, [])
    expected = np.stack([mrcfiles.read(path) for path in local])
    with xr.open_dataset(tmp_path / "coll", engine="refindex") as ds:
        assert list(ds["data"].dims) == ["tomogram", "z", "y", "x"]
        assert ds["data"].values.tobytes() == expected.tobytes()
        assert list(ds["tomogram"].values) == [0, 1, 2]


def test_validate_checks_an_mrc_source_and_its_chunks(tmp_path):
    path = mrcfiles.write(tmp_path / "v.mrc", mrcfiles.values("i2", (4, 6, 8)))
    sidecar = tmp_path / "v.refs.json"
    write_index(scan(path).index, sidecar)
    report = validate(sidecar, deep=True)
    assert [str(check.status) for check in report.sources] == ["ok"] and report.ok
    mrcfiles.truncate(path, path.stat().st_size - 2)
    assert [str(check.status) for check in validate(sidecar).sources] == ["resized"]


def test_scan_and_convert_to_kerchunk_on_the_command_line(tmp_path, capsys):
    path = mrcfiles.write(tmp_path / "c.mrc", mrcfiles.values("c8", (3, 4, 5), ">"))
    native, kerchunk = tmp_path / "c.refs.json", tmp_path / "c.kerchunk.json"
    assert main(["scan", str(path), "-o", str(native)]) == 0
    assert main(["convert", "--format", "kerchunk", str(native), str(kerchunk)]) == 0
    group = zarr.open_group(refindex.open_store(kerchunk), mode="r", zarr_format=2)
    assert group["data"][...].tobytes() == mrcfiles.read(path).tobytes()
    assert group["data"].dtype == np.dtype(">c8")
    assert load_index(kerchunk).groups[""]["voxel_size"] == {"x": 1.5, "y": 2.0, "z": 2.5}
