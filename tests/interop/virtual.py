"""Round trips of refindex.virtualizarr.Parser: scan → VirtualiZarr → (ManifestStore,
kerchunk JSON, Icechunk) → read, each compared bit for bit with h5netcdf / netCDF4 / zarr
reading the file itself."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import virtualizarr as vz
import xarray as xr
from obspec_utils.registry import ObjectStoreRegistry
from obstore.store import LocalStore

from refindex.virtualizarr import Parser

RAW = {"mask_and_scale": False, "decode_times": False, "decode_timedelta": False}
"""No CF decoding: the stored values, as the reference reader gives them."""

warnings.filterwarnings("ignore", message="Numcodecs codecs are not in the Zarr version 3")


def local_registry() -> ObjectStoreRegistry:
    return ObjectStoreRegistry({"file://": LocalStore()})


def url_of(path: str | Path) -> str:
    return Path(path).resolve().as_uri()


def open_virtual(path: str | Path, parser: Parser | None = None, **kwargs) -> xr.Dataset:
    return vz.open_virtual_dataset(url_of(path), registry=local_registry(),
                                   parser=parser or Parser(), **kwargs)


def reference(path: str | Path, group: str | None = None, engine: str = "h5netcdf"
              ) -> xr.Dataset:
    extra = {"phony_dims": "access"} if engine == "h5netcdf" else {}
    return xr.open_dataset(path, engine=engine, group=group, **RAW, **extra)


def assert_same(actual: xr.Dataset, expected: xr.Dataset) -> None:
    """Same variables, dimensions and values, bit for bit (NaNs by their bits)."""
    assert sorted(actual.variables) == sorted(expected.variables)
    for name, variable in expected.variables.items():
        got = actual[name]
        assert got.dims == variable.dims, name
        assert_same_values(np.asarray(got.values), np.asarray(variable.values), name)


def assert_same_values(actual: np.ndarray, expected: np.ndarray, name: str = "") -> None:
    assert actual.shape == expected.shape, name
    if expected.dtype.kind in "OUST" or actual.dtype.kind in "OUST":
        assert _texts(actual) == _texts(expected), name
        return
    assert actual.dtype.newbyteorder("=") == expected.dtype.newbyteorder("="), name
    native = expected.dtype.newbyteorder("=")
    assert actual.astype(native).tobytes() == expected.astype(native).tobytes(), name


def _texts(values: np.ndarray) -> list:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values.ravel().tolist()]


def loaded(vds: xr.Dataset, store) -> xr.Dataset:
    """Every variable of ``vds`` as values: the loaded ones as they are, the virtual ones
    read through the parser's ManifestStore."""
    values = xr.open_zarr(store, zarr_format=3, consolidated=False, **RAW)
    return values[list(vds.variables)].load()


def through_kerchunk(vds: xr.Dataset, tmp_path: Path) -> xr.Dataset:
    target = tmp_path / "refs.json"
    vds.vz.to_kerchunk(str(target), format="json")
    return xr.open_dataset(str(target), engine="kerchunk", **RAW).load()


def through_icechunk(vds: xr.Dataset, tmp_path: Path, data_dir: Path) -> xr.Dataset:
    import icechunk

    prefix = f"file://{data_dir.resolve()}/"  # as the manifests name local files
    config = icechunk.RepositoryConfig.default()
    config.set_virtual_chunk_container(
        icechunk.VirtualChunkContainer(prefix, icechunk.local_filesystem_store(str(data_dir))))
    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(tmp_path / "ic")),
                                      config, authorize_virtual_chunk_access={prefix: None})
    session = repo.writable_session("main")
    vds.vz.to_icechunk(session.store)
    session.commit("virtual")
    store = repo.readonly_session("main").store
    return xr.open_zarr(store, zarr_format=3, consolidated=False, **RAW).load()


def assert_round_trips(path: Path, tmp_path: Path, engine: str = "h5netcdf",
                       parser: Parser | None = None, kerchunk: bool = True,
                       icechunk: bool = True) -> xr.Dataset:
    """Open ``path`` through the parser and check the values read through the ManifestStore,
    a kerchunk JSON and an Icechunk repository against ``engine`` reading it."""
    parser = parser or Parser()
    store = parser(url_of(path), local_registry())
    vds = store.to_virtual_dataset()
    expected = reference(path, engine=engine)
    assert_same(loaded(vds, store), expected)
    if kerchunk:
        assert_same(through_kerchunk(vds, tmp_path), expected)
    if icechunk:
        assert_same(through_icechunk(vds, tmp_path, path.parent), expected)
    return vds
