"""Files to serve (generated once per session: HDF5 with every built-in filter and the
standard codecs, NetCDF4, NetCDF3, a packed Zarr store, a combined collection with uneven
members), their sidecars, and ``serving``: a server on a free loopback port."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from refindex.combine import CombineOptions, combine
from refindex.pack import PackOptions, pack
from refindex.scan import scan
from refindex.serve import BackgroundServer, DatasetConfig
from refindex.serve.config import make_config
from refindex.sidecar import write_index
from tests.combine import ncfiles
from tests.pack.test_pack import make_store
from tests.scan import h5files, nc3files


@dataclass(frozen=True)
class Served:
    """A generated file (or store, or members) and its sidecar."""

    source: Path | list[Path]
    sidecar: Path


def _scanned(path: Path, make) -> Served:
    make(path)
    sidecar = path.with_name(path.stem + ".refs.json")
    write_index(scan(path).index, sidecar)
    return Served(path, sidecar)


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Served]:
    root = tmp_path_factory.mktemp("serve")
    made = {
        "filters": _scanned(root / "filters.h5", h5files.builtin_filters),
        "standard": _scanned(root / "standard.h5", h5files.standard_codecs),
        "netcdf4": _scanned(root / "netcdf4.nc", h5files.netcdf4),
        "layouts": _scanned(root / "layouts.h5", h5files.layouts),
        "netcdf3": _scanned(root / "classic.nc",
                            lambda p: nc3files.every_type(p, "NETCDF3_64BIT_OFFSET")),
    }
    store = make_store(root / "cells.zarr")
    packed = pack(store, root / "packed", PackOptions(target_size=64 * 1024))
    made["packed"] = Served(store, Path(packed.sidecar))
    members = ncfiles.yearly(root / "yearly", years=(2003, 2004), chunk=30)
    index = combine([scan(p).index for p in members], CombineOptions(concat_dims=("time",)))
    write_index(index, root / "combined.refs.json")
    made["combined"] = Served(members, root / "combined.refs.json")
    return made


@contextlib.contextmanager
def serving(*datasets: DatasetConfig, **options) -> Iterator[BackgroundServer]:
    """``datasets`` served on 127.0.0.1 at a free port while the block runs."""
    config = make_config(list(datasets), **{"port": 0, **options})
    with BackgroundServer(config) as server:
        yield server


def dataset(name: str, served: Served, **options) -> DatasetConfig:
    return DatasetConfig(name, str(served.sidecar), **options)
