"""``refindex convert`` and ``scan --format``: native ↔ kerchunk JSON, kerchunk parquet
reference directories (as kerchunk writes them) to either, every reference kept."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import fsspec
import h5py
import numpy as np
import pytest
import xarray as xr
import zarr
from kerchunk.df import refs_to_dataframe

import refindex
from refindex.cli import main
from refindex.errors import SidecarError
from refindex.index import ABSENT, Index
from refindex.sidecar import load_index, parse_index
from refindex.sidecar.native import INDEX_FILE, MARKER
from tests.roundtrip import kerchunk_refs
from tests.sidecar.indexes import assert_same_index

# kerchunk writes parquet references with fastparquet (fsspec's default engine); refindex reads
# them with pandas and pyarrow.
pytest.importorskip("fastparquet")
pytest.importorskip("pyarrow")


@pytest.fixture(scope="module")
def h5(tmp_path_factory) -> Path:
    """Chunked (some chunks never written), contiguous and tiny datasets, in a group too."""
    path = tmp_path_factory.mktemp("convert") / "data.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("temp", data=np.arange(600.0).reshape(20, 30), chunks=(4, 7),
                         compression="gzip")
        sparse = f.create_dataset("sparse", shape=(40,), chunks=(5,), dtype="i4",
                                  fillvalue=-1)
        sparse[10:20] = np.arange(10)
        f.create_group("grp").create_dataset("plain", data=np.arange(24, dtype="i2"))
        f.create_dataset("tiny", data=np.arange(3, dtype="u1"))
    return path


def kerchunk_refs_of(path: Path) -> dict:
    return kerchunk_refs(path, inline_threshold=10)


def values(sidecar) -> dict[str, np.ndarray]:
    group = zarr.open_group(refindex.open_store(sidecar), mode="r", zarr_format=2)
    return {path: group[path][...] for path in ("temp", "sparse", "grp/plain", "tiny")}


def assert_same_references(actual: Index, expected: Index) -> None:
    """Same chunks at the same URLs, offsets and lengths (source ids may be numbered
    differently), same inline bytes."""
    assert set(actual.arrays) == set(expected.arrays)
    for path, node in expected.arrays.items():
        ours, theirs = actual.arrays[path].chunks, node.chunks
        for flat in range(len(theirs)):
            a, b = ours.get(flat), theirs.get(flat)
            url = actual.sources[a.source].url if a.source >= 0 else None
            assert (url, a.offset, a.length, a.data) == (
                expected.sources[b.source].url if b.source >= 0 else None,
                b.offset, b.length, b.data), f"{path} chunk {flat}"


def test_scan_writes_the_native_format_by_default(h5, tmp_path):
    assert main(["scan", str(h5), "-o", str(tmp_path / "s.json")]) == 0
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc[MARKER] == "1.0" and doc["generator"]["name"] == "refindex"
    assert doc["generator"]["scanned_at"].endswith("Z")


def test_scan_format_kerchunk_is_read_by_fsspec(h5, tmp_path):
    out = tmp_path / "k.json"
    assert main(["scan", str(h5), "-o", str(out), "--format", "kerchunk"]) == 0
    fs = fsspec.filesystem("reference", fo=str(out), asynchronous=True)
    group = zarr.open_group(zarr.storage.FsspecStore(fs, read_only=True, path=""), mode="r",
                            zarr_format=2)
    np.testing.assert_array_equal(group["temp"][...], np.arange(600.0).reshape(20, 30))


def test_scan_layout_directory_writes_index_and_parts(h5, tmp_path):
    out = tmp_path / "side"
    assert main(["scan", str(h5), "-o", str(out), "--layout", "directory"]) == 0
    assert (out / INDEX_FILE).is_file() and list((out / "chunks").iterdir())
    np.testing.assert_array_equal(values(out)["temp"], np.arange(600.0).reshape(20, 30))


def test_kerchunk_has_no_directory_layout(h5, tmp_path, capsys):
    assert main(["scan", str(h5), "--format", "kerchunk", "--layout", "directory"]) == 2
    assert main(["convert", str(h5), str(tmp_path / "x"), "--format", "kerchunk",
                 "--layout", "directory"]) == 2
    assert "one file" in capsys.readouterr().err


def test_convert_native_to_kerchunk_and_back_keeps_every_reference(h5, tmp_path):
    native, kerchunk, again = tmp_path / "n.json", tmp_path / "k.json", tmp_path / "again"
    assert main(["scan", str(h5), "-o", str(native)]) == 0
    assert main(["convert", str(native), str(kerchunk), "--format", "kerchunk"]) == 0
    assert "refs" in json.loads(kerchunk.read_text())
    assert main(["convert", str(kerchunk), str(again), "--layout", "directory"]) == 0
    assert (again / INDEX_FILE).is_file()
    assert_same_index(load_index(again), load_index(native))


# --- kerchunk parquet references --------------------------------------------------------------


@pytest.fixture
def parquet_refs(h5, tmp_path) -> tuple[dict, Path]:
    """kerchunk's references of ``h5``, and the parquet directory kerchunk writes of them
    (three references per record file, so arrays span several files)."""
    refs = kerchunk_refs_of(h5)
    folder = tmp_path / "refs.parq"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas deprecates the fastparquet engine fsspec uses
        refs_to_dataframe(refs, str(folder), record_size=3)
    return refs, folder


def test_parquet_references_convert_to_the_same_references(parquet_refs, tmp_path):
    refs, folder = parquet_refs
    assert main(["convert", str(folder), str(tmp_path / "n.json")]) == 0
    assert_same_references(load_index(tmp_path / "n.json"), parse_index(refs))


def test_parquet_references_are_read_as_kerchunk_json_would_be(parquet_refs, h5):
    refs, folder = parquet_refs
    expected = values(refs)
    for path, array in values(folder).items():
        np.testing.assert_array_equal(array, expected[path], err_msg=path)
    with h5py.File(h5) as f:
        np.testing.assert_array_equal(expected["sparse"], f["sparse"][...])
        np.testing.assert_array_equal(expected["tiny"], f["tiny"][...])  # inline


def test_xarray_opens_a_parquet_reference_directory(parquet_refs):
    _, folder = parquet_refs
    # kerchunk names every axis phony_dim_N by position, whatever its length, and means its
    # fill value (0 here) as the missing-value marker.
    ds = xr.open_dataset(folder, engine="refindex", drop_variables=["sparse", "tiny"],
                         mask_and_scale=False)
    np.testing.assert_array_equal(ds["temp"].values, np.arange(600.0).reshape(20, 30))


def test_parquet_record_never_written_means_absent_chunks(parquet_refs):
    _, folder = parquet_refs
    assert (load_index(folder).arrays["sparse"].chunks.source[2:4] >= 0).all()  # written
    (folder / "sparse" / "refs.0.parq").unlink()  # the references of chunks 0-2
    table = load_index(folder).arrays["sparse"].chunks
    assert table.source[:3].tolist() == [ABSENT] * 3 and table.source[3] >= 0


def test_corrupted_parquet_file_is_named(parquet_refs):
    _, folder = parquet_refs
    damaged = folder / "temp" / "refs.1.parq"
    damaged.write_bytes(damaged.read_bytes()[:20])
    with pytest.raises(SidecarError, match=rf"{damaged}: not a readable parquet file"):
        load_index(folder)


def test_xarray_and_inspect_open_a_native_directory(h5, tmp_path, capsys):
    out = tmp_path / "side"
    assert main(["scan", str(h5), "-o", str(out), "--layout", "directory"]) == 0
    assert main(["inspect", str(out)]) == 0
    assert "temp" in capsys.readouterr().out
    ds = xr.open_dataset(out, engine="refindex")
    np.testing.assert_array_equal(ds["temp"].values, np.arange(600.0).reshape(20, 30))
