"""Storage layouts beyond plain chunks: external raw files, virtual datasets, chunks HDF5 stored
with optional filters skipped, chunks never written, and large contiguous datasets."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import zarr

import refindex
from refindex.errors import UnsupportedFeatureError
from refindex.index import ABSENT, INLINE
from refindex.scan import ScanOptions, scan
from refindex.scan.blocks import CONTIGUOUS_BLOCK
from tests.roundtrip import assert_xarray_matches, assert_zarr_matches, scan_to_sidecar
from tests.scan import h5files


def read_all(sidecar, path: str) -> np.ndarray:
    return zarr.open_group(refindex.open_store(sidecar), mode="r", zarr_format=2)[path][...]


# --- external raw storage -------------------------------------------------------------------


@pytest.fixture
def external(tmp_path, monkeypatch):
    """An HDF5 file with external raw storage and the values its datasets hold; the test runs
    in another directory than the file's, as readers of a sidecar would."""
    path = tmp_path / "data" / "external.h5"
    path.parent.mkdir()
    values = h5files.external_storage(path)
    monkeypatch.chdir(tmp_path)
    return path, values


def test_external_single_segment_is_one_reference_into_the_raw_file(external, tmp_path):
    path, values = external
    index = scan(path).index
    node = index.arrays["single"]
    ref = node.chunks.get(0)
    assert len(node.chunks) == 1
    assert (index.sources[ref.source].url, ref.offset, ref.length) == (
        str(path.parent / "single.bin"), 16, values.nbytes)
    np.testing.assert_array_equal(read_all(scan_to_sidecar(path, tmp_path), "single"), values)


def test_external_equal_segments_are_one_row_block_each(external, tmp_path):
    path, values = external
    result = scan(path)
    node = result.index.arrays["equal_segments"]
    urls = [result.index.sources[s].url for s in node.chunks.source]
    assert node.zarray["chunks"] == [4, 10]
    assert [u.rsplit("/", 1)[-1] for u in urls] == ["segments_a.bin", "segments_b.bin",
                                                    "segments_a.bin"]
    assert node.chunks.offset.tolist() == [0, 0, 323]
    sidecar = scan_to_sidecar(path, tmp_path)
    np.testing.assert_array_equal(read_all(sidecar, "equal_segments"), values)


def test_external_unequal_segments_are_inlined_when_small(external, tmp_path):
    path, values = external
    node = scan(path).index.arrays["unequal_segments"]
    assert node.chunks.source.tolist() == [INLINE]
    sidecar = scan_to_sidecar(path, tmp_path)
    np.testing.assert_array_equal(read_all(sidecar, "unequal_segments"), values)


def test_external_unequal_segments_too_big_to_inline_are_an_error(external):
    path, _ = external
    with pytest.raises(UnsupportedFeatureError) as caught:
        scan(path, ScanOptions(max_inline=100, on_unsupported="error"))
    assert caught.value.dataset == "/unequal_segments"
    assert "external raw storage" in caught.value.feature
    assert str(path) in str(caught.value)


def test_external_storage_reads_like_h5py_through_zarr_and_xarray(external, tmp_path,
                                                                   monkeypatch):
    path, _ = external
    sidecar = scan_to_sidecar(path, tmp_path)
    monkeypatch.chdir(path.parent)  # h5py finds relative raw files in the current directory
    assert_zarr_matches(path, sidecar)
    assert_xarray_matches(path, sidecar)


# --- virtual datasets -----------------------------------------------------------------------


def test_virtual_dataset_from_a_local_file_is_inlined_with_its_values(tmp_path, monkeypatch):
    path = tmp_path / "vds.h5"
    h5files.virtual_stack(path)
    monkeypatch.chdir("/")  # HDF5 finds the sources next to the file, wherever we are
    result = scan(path)
    assert result.index.arrays["stacked"].chunks.source.tolist() == [INLINE]
    sidecar = scan_to_sidecar(path, tmp_path)
    expected = np.stack([np.arange(10) + 0, np.arange(10) + 100, np.full(10, -1)]).astype("i4")
    np.testing.assert_array_equal(read_all(sidecar, "stacked"), expected)
    assert_zarr_matches(path, sidecar)


@pytest.fixture
def s3_virtual(s3_env, s3_bucket, tmp_path):
    """The VDS file and its two sources uploaded side by side; the VDS file's URL."""
    path = tmp_path / "vds.h5"
    h5files.virtual_stack(path)
    for name in ("vds.h5", "vds_source0.h5", "vds_source1.h5"):
        s3_env.upload(tmp_path / name, s3_bucket, name)
    return f"s3://{s3_bucket}/vds.h5"


def test_virtual_dataset_in_a_remote_file_is_a_clear_error(s3_virtual):
    with pytest.raises(UnsupportedFeatureError) as caught:
        scan(s3_virtual, ScanOptions(on_unsupported="error"))
    assert caught.value.dataset == "/stacked"
    assert "virtual dataset" in caught.value.feature
    assert s3_virtual in str(caught.value)


def test_virtual_dataset_in_a_remote_file_is_left_out_and_recorded_by_default(s3_virtual):
    result = scan(s3_virtual)
    assert list(result.index.arrays) == ["plain"]
    assert list(result.left_out) == ["stacked"]
    assert "virtual dataset" in result.left_out["stacked"]


# --- optional filters skipped for some chunks ---------------------------------------------


@pytest.fixture(scope="module")
def mixed_masks(tmp_path_factory):
    path = tmp_path_factory.mktemp("masks") / "masks.h5"
    h5files.mixed_filter_masks(path)
    return path


def filter_masks(path, name: str) -> set[int]:
    masks = set()
    with h5py.File(path, "r") as f:
        f[name].id.chunk_iter(lambda info: masks.add(info.filter_mask))
    return masks


@pytest.mark.parametrize("name", ["lzf", "shuffle_lzf", "szip_nn", "szip_ec",
                                  "szip_mostly_skipped"])
def test_chunks_stored_with_different_filter_masks_read_exactly(mixed_masks, name, tmp_path):
    assert len(filter_masks(mixed_masks, name)) == 2, "the file should mix filter masks"
    sidecar = scan_to_sidecar(mixed_masks, tmp_path)
    with h5py.File(mixed_masks, "r") as f:
        np.testing.assert_array_equal(read_all(sidecar, name), f[name][...])


def test_only_the_chunks_of_the_other_filter_mask_are_inlined(mixed_masks):
    node = scan(mixed_masks).index.arrays["lzf"]
    inline = (node.chunks.source == INLINE).sum()
    assert 0 < inline < len(node.chunks) / 2 + 1
    assert (node.chunks.source >= 0).sum() == len(node.chunks) - inline


def test_too_many_chunks_of_another_filter_mask_to_inline_is_an_error(mixed_masks):
    with pytest.raises(UnsupportedFeatureError) as caught:
        scan(mixed_masks, ScanOptions(max_inline=1000, on_unsupported="error"))
    assert "filter mask" in caught.value.feature


# --- chunks never written -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["int_fill", "nan_fill", "never_written"])
def test_chunks_never_written_read_as_the_fill_value(name, tmp_path):
    path = tmp_path / "unwritten.h5"
    h5files.unwritten_chunks(path)
    node = scan(path).index.arrays[name]
    assert (node.chunks.source == ABSENT).any()
    with h5py.File(path, "r") as f:
        expected = f[name][...]
    actual = read_all(scan_to_sidecar(path, tmp_path), name)
    assert actual.dtype == expected.dtype
    np.testing.assert_array_equal(actual, expected)  # NaN == NaN here


def test_a_dataset_with_no_chunk_written_has_no_chunk_references(tmp_path):
    path = tmp_path / "unwritten.h5"
    h5files.unwritten_chunks(path)
    node = scan(path).index.arrays["never_written"]
    assert node.chunks.present().size == 0
    assert node.zarray["fill_value"] == 2.25


# --- large contiguous datasets --------------------------------------------------------------


def large_contiguous(path, rows: int, trailing: bool = False) -> None:
    """A contiguous f8 dataset of ``rows`` x 1024 (more than CONTIGUOUS_BLOCK bytes), and, when
    ``trailing``, another as large after it in the file."""
    rng = np.random.default_rng(7)
    with h5py.File(path, "w") as f:
        f.create_dataset("big", data=rng.random((rows, 1024)))
        if trailing:
            f.create_dataset("after", data=rng.random((rows, 1024)))


def test_large_contiguous_dataset_is_split_into_row_blocks(tmp_path):
    path = tmp_path / "big.h5"
    large_contiguous(path, 2048)
    node = scan(path).index.arrays["big"]
    rows = CONTIGUOUS_BLOCK // (1024 * 8)
    assert node.zarray["chunks"] == [rows, 1024]
    assert len(node.chunks) == 2048 // rows
    np.testing.assert_array_equal(node.chunks.length, rows * 1024 * 8)
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(read_all(scan_to_sidecar(path, tmp_path), "big"),
                                      f["big"][...])


def test_prime_row_count_splits_when_the_last_block_stays_inside_the_file(tmp_path):
    path = tmp_path / "prime.h5"
    large_contiguous(path, 1031, trailing=True)
    node = scan(path).index.arrays["big"]
    rows = node.zarray["chunks"][0]
    assert rows < 1031 and 1031 % rows != 0
    assert len(node.chunks) == -(-1031 // rows)
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(read_all(scan_to_sidecar(path, tmp_path), "big"),
                                      f["big"][...])


def test_prime_row_count_at_the_end_of_the_file_stays_one_block(tmp_path):
    path = tmp_path / "prime_last.h5"
    large_contiguous(path, 1031)
    node = scan(path).index.arrays["big"]
    assert node.zarray["chunks"] == [1031, 1024] and len(node.chunks) == 1
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(read_all(scan_to_sidecar(path, tmp_path), "big"),
                                      f["big"][...])
