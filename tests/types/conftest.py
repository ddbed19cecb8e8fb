"""Fixtures for the type tests."""

from __future__ import annotations

from collections.abc import Iterator

import h5py
import pytest


@pytest.fixture(params=["default", "latest"])
def h5file(request: pytest.FixtureRequest, tmp_path) -> Iterator[h5py.File]:
    """A fresh HDF5 file open for writing, once with the default and once with the latest
    format version (``libver``)."""
    libver = None if request.param == "default" else "latest"
    with h5py.File(tmp_path / "types.h5", "w", libver=libver) as f:
        yield f
