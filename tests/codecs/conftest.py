"""Fixtures for the codec tests: small HDF5 files written in the test's directory."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import h5py
import pytest
from hdf5_chunks import sample


@pytest.fixture
def h5file(tmp_path) -> Iterator[h5py.File]:
    """A new, writable HDF5 file in the test's directory."""
    with h5py.File(tmp_path / "data.h5", "w") as file:
        yield file


@pytest.fixture
def make_dataset(h5file) -> Callable[..., h5py.Dataset]:
    """Create a (23, 17) dataset chunked (8, 5), so edge chunks are partial in both axes."""
    counter = iter(range(10**6))

    def make(dtype="<f4", shape=(23, 17), chunks=(8, 5), data=None, **kwargs) -> h5py.Dataset:
        data = sample(dtype, shape) if data is None else data
        return h5file.create_dataset(
            f"d{next(counter)}", data=data, dtype=data.dtype, chunks=chunks, **kwargs
        )

    return make
