"""How many chunks zarr asks a refindex store for at once: never changed by opening a store,
raised only around refindex's own reads through zarr, set for the process only on request."""

from __future__ import annotations

import pickle
import threading

import h5py
import numpy as np
import pytest
import xarray as xr
import zarr

import refindex
from refindex.index import ArrayNode, ChunkTable, Index
from refindex.io import ReadOptions
from refindex.store import ReferenceStore
from refindex.store.tuning import zarr_concurrency
from tests.roundtrip import scan_to_sidecar


@pytest.fixture(autouse=True)
def _zarrs_default():
    """zarr as a fresh process has it: its default of 10, not chosen by anyone."""
    with zarr.config.set({"async.concurrency": 10}):
        yield


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory):
    """A sidecar of an HDF5 file with one array of 64 small chunks."""
    folder = tmp_path_factory.mktemp("tuning")
    with h5py.File(folder / "t.h5", "w") as f:
        f.create_dataset("v", data=np.arange(4096, dtype="<f4").reshape(64, 64), chunks=(8, 8))
    return scan_to_sidecar(folder / "t.h5", folder)


def store_of(chunks: list[int], dtype="<f4", **options) -> ReferenceStore:
    index = Index()
    index.arrays["a"] = ArrayNode("a", {"chunks": chunks, "dtype": dtype}, {}, ChunkTable((4,)))
    return ReferenceStore(index, ReadOptions(**options))


def test_opening_a_store_leaves_zarrs_concurrency_alone(sidecar):
    store = refindex.open_store(sidecar, zarr_concurrency=300)
    pickle.loads(pickle.dumps(store))  # as a Dask worker gets it

    assert zarr.config.get("async.concurrency") == 10


def test_refindex_raises_zarrs_default_only_while_it_reads():
    with zarr_concurrency(300):
        assert zarr.config.get("async.concurrency") == 300
    assert zarr.config.get("async.concurrency") == 10


def test_overlapping_reads_of_several_threads_put_zarrs_value_back_once_all_end():
    inside = threading.Barrier(4)
    leave = threading.Event()

    def read(count: int) -> None:
        with zarr_concurrency(count):
            inside.wait(5)
            leave.wait(5)

    threads = [threading.Thread(target=read, args=(count,)) for count in (64, 512, 128)]
    for thread in threads:
        thread.start()
    inside.wait(5)
    assert zarr.config.get("async.concurrency") == 512  # the largest asked for
    leave.set()
    for thread in threads:
        thread.join(5)

    assert zarr.config.get("async.concurrency") == 10


def test_a_value_the_user_chose_is_left_alone(monkeypatch):
    with zarr.config.set({"async.concurrency": 7}), zarr_concurrency(300):
        assert zarr.config.get("async.concurrency") == 7
    monkeypatch.setenv("ZARR_ASYNC__CONCURRENCY", "10")
    with zarr_concurrency(300):
        assert zarr.config.get("async.concurrency") == 10


def test_zarr_concurrency_zero_leaves_zarr_alone():
    with zarr_concurrency(store_of([8], zarr_concurrency=0).zarr_concurrency):
        assert zarr.config.get("async.concurrency") == 10


@pytest.mark.parametrize(("chunks", "dtype", "expected"), [
    ([32, 32], "<f4", 4096),  # small chunks: a whole plane of them in one batch
    ([64, 64, 64], "<f4", 512),  # 1 MiB chunks: 512 MiB in flight at most
    ([512, 512, 512], "<f8", 64),  # huge chunks: never below 64
    ([10], [["a", "<i4"], ["b", "<f8", [3]]], 4096),  # records
])
def test_automatic_concurrency_follows_the_chunk_size(chunks, dtype, expected):
    assert store_of(chunks, dtype).zarr_concurrency == expected


def test_the_xarray_backends_zarr_reads_use_the_stores_concurrency(sidecar, monkeypatch):
    # Basic selections are read by refindex's region reader (tests/test_assemble.py); zarr
    # reads the rest, such as this outer selection of every row.
    seen = []
    read_many = ReferenceStore._read_many

    async def recording(self, key_ranges):
        seen.append(zarr.config.get("async.concurrency"))
        return await read_many(self, key_ranges)

    monkeypatch.setattr(ReferenceStore, "_read_many", recording)
    with xr.open_dataset(sidecar, engine="refindex",
                         storage_options={"zarr_concurrency": 300}) as dataset:
        assert zarr.config.get("async.concurrency") == 10  # opened: nothing changed
        values = dataset["v"][list(range(64))].values

    assert values.tolist() == np.arange(4096, dtype="<f4").reshape(64, 64).tolist()
    assert seen and set(seen) <= {10, 300}  # metadata read before, chunks read during
    assert seen.count(300) == 64
    assert zarr.config.get("async.concurrency") == 10


def test_tune_zarr_sets_the_stores_concurrency_for_the_process(sidecar):
    store = refindex.open_store(sidecar, zarr_concurrency=300)

    assert refindex.tune_zarr(store) == 300
    assert zarr.config.get("async.concurrency") == 300
    assert refindex.tune_zarr(42) == 42
    with pytest.raises(ValueError, match="must be > 0"):
        refindex.tune_zarr(0)
