"""Archived Zarr stores in object storage (the SeaweedFS test server): scanned with few
requests, and read back exactly with neighbouring members merged into few requests."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import zarr

import refindex
from refindex.scan import scan
from refindex.store.tuning import zarr_concurrency
from tests.scan.zarr_stores import assert_same_arrays, sharded_array, tar_of, zip_of

pytestmark = pytest.mark.filterwarnings("ignore::zarr.errors.ZarrUserWarning")

GRID = (100, 100)  # chunks: 10,000 members in the archive
CHUNK = (4, 4)


@pytest.fixture(scope="module")
def many_chunks(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """A v2 store of 10,000 uncompressed chunks and its values."""
    path = tmp_path_factory.mktemp("many") / "many.zarr"
    shape = tuple(g * c for g, c in zip(GRID, CHUNK, strict=True))
    values = np.arange(np.prod(shape), dtype="<i4").reshape(shape)
    array = zarr.create_array(str(path), shape=shape, chunks=CHUNK, dtype="<i4",
                              zarr_format=2, compressors=None)
    array[...] = values
    return path, values


@pytest.mark.slow
def test_tar_of_10000_chunks_scans_in_few_requests_and_round_trips(s3_env, s3_bucket,
                                                                   many_chunks, tmp_path):
    store, values = many_chunks
    archive = tar_of(store, tmp_path / "many.tar", top="")
    url = s3_env.upload(archive, s3_bucket, "many.tar")

    result = scan(url)

    size = archive.stat().st_size
    # The walk reads every header: with 1 KiB members, the whole archive in 1 MiB blocks.
    assert result.requests <= size // 2**20 + 5 and result.fetched <= size + 2**20
    read = refindex.open_store(result.index)
    array = zarr.open_array(read, mode="r", zarr_format=2)
    np.testing.assert_array_equal(array[...], values)
    # 10,000 chunks, ~20 MiB of archive with the headers between them: ~4 MiB reads (about
    # 6 at rest; zarr's gets arrive in more batches when the machine is busy).
    assert read.engine.stats.total("fetches") <= 60


def test_neighbouring_chunks_of_an_archive_merge_into_one_request(s3_env, s3_bucket,
                                                                  many_chunks, tmp_path):
    store, values = many_chunks
    url = s3_env.upload(tar_of(store, tmp_path / "many.tar", top=""), s3_bucket, "many.tar")
    read = refindex.open_store(scan(url).index)

    # zarr asked for the store's chunks at once, as refindex's own reads do (zarr's default
    # of 10 makes it about twice as many requests, the read-ahead merging what it can).
    with zarr_concurrency(read.zarr_concurrency):
        rows = zarr.open_array(read, mode="r", zarr_format=2)[0:40, :]  # 1,000 adjacent chunks

    np.testing.assert_array_equal(rows, values[0:40])
    stats = read.engine.stats.by_scheme()["s3"]
    assert stats.fetches <= 10 and stats.merged >= 900


@pytest.mark.slow
def test_zip_of_10000_chunks_reads_its_local_headers_in_few_requests(s3_env, s3_bucket,
                                                                    many_chunks, tmp_path):
    store, values = many_chunks
    archive = zip_of(store, tmp_path / "many.zip", top="")
    url = s3_env.upload(archive, s3_bucket, "many.zip")

    result = scan(url)

    assert result.requests <= 2 * (archive.stat().st_size // 2**20) + 5
    array = zarr.open_array(refindex.open_store(result.index), mode="r", zarr_format=2)
    np.testing.assert_array_equal(array[...], values)


def test_remote_deflated_zip_reads_exactly(s3_env, s3_bucket, tmp_path):
    store = tmp_path / "small.zarr"
    array = zarr.create_array(str(store), shape=(50, 50), chunks=(10, 10), dtype="<f8",
                              zarr_format=3)
    array[...] = np.linspace(0, 1, 2500).reshape(50, 50)
    path = zip_of(store, tmp_path / "small.zip", top="", compression=zipfile.ZIP_DEFLATED)
    url = s3_env.upload(path, s3_bucket, "small.zip")

    assert_same_arrays(store, scan(url).index)


def test_shard_indexes_of_a_remote_archive_are_read_in_a_batch(s3_env, s3_bucket, tmp_path):
    values = sharded_array(tmp_path / "a.zarr", shape=(160, 200), chunks=(4, 5),
                           shard=(20, 25))  # 64 shards of 25 inner chunks
    url = s3_env.upload(tar_of(tmp_path / "a.zarr", tmp_path / "a.tar", top=""), s3_bucket,
                        "a.tar")

    result = scan(url)

    # The tar walk, the metadata and the 64 shard indexes: not a request per shard.
    assert result.requests < 16
    read = refindex.open_store(result.index)
    np.testing.assert_array_equal(zarr.open_array(read, mode="r", zarr_format=2)[...], values)
