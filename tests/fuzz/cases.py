"""One fuzz case: a mutant scanned (or, for a sidecar, loaded), every array read through the
store, and the values compared with what the format's own library reads from the mutant.

The outcome is the worst of its steps:

- ``other``: an exception that is not a ``RefindexError`` (a bug: fix it where it arises);
- ``wrong``: refindex read values that differ from h5py's, netCDF4's, zarr's, mrcfile's or
  tifffile's (a bug);
- ``error``: refindex refused the mutant, or an array of it, with a ``RefindexError``;
- ``unverified``: refindex read values, but no reference reader could read the mutant (or,
  for a sidecar, there is nothing to compare with: a mutated sidecar may point anywhere);
- ``exact``: every array read, equal bit for bit (NaN-aware) to the reference reader's.
"""

from __future__ import annotations

import contextlib
import tarfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import mrcfile
import netCDF4
import numpy as np
import tifffile
import zarr

from refindex.errors import RefindexError
from refindex.scan import scan
from refindex.sidecar import load_index, write_index
from refindex.store import open_store

BAD = ("other", "wrong", "hang", "memory", "crash")
_RANK = {"exact": 0, "unverified": 1, "error": 2, "wrong": 3, "other": 4}


@dataclass
class Outcome:
    outcome: str = "exact"
    detail: str = ""

    def note(self, outcome: str, detail: str = "") -> None:
        if _RANK[outcome] > _RANK[self.outcome]:
            self.outcome, self.detail = outcome, detail


def run_case(kind: str, mutant: Path, before_oracle: Callable[[], None] = lambda: None
             ) -> Outcome:
    """Scan or load ``mutant`` (of seed ``kind``), read every array, compare; see the module."""
    outcome = Outcome()
    try:
        index = _index_of(kind, mutant)
    except RefindexError as exc:
        outcome.note("error", f"{type(exc).__name__}: {exc}"[:300])
        return outcome
    except Exception as exc:  # noqa: BLE001 - what the fuzzer is looking for
        outcome.note("other", _describe(exc))
        return outcome
    store = open_store(index, cache_size=0, readahead_size=0)
    try:
        values = {path: _read(store, path, outcome) for path in index.arrays}
    finally:
        store.close()
    values = {path: v for path, v in values.items() if v is not None}
    if kind in ("native", "kerchunk", "native_dir"):
        if values:
            outcome.note("unverified")
        return outcome
    before_oracle()
    expected = _reference_values(kind, mutant, set(values))
    for path, actual in values.items():
        if path not in expected:
            outcome.note("unverified")
        elif not _same(expected[path], actual):
            outcome.note("wrong", f"{path}: refindex read {_show(actual)}, the reference "
                                  f"reader {_show(expected[path])}")
    return outcome


def _index_of(kind: str, mutant: Path):
    if kind in ("native", "kerchunk", "native_dir"):
        return load_index(mutant)
    index = scan(mutant).index
    # The sidecar writer and reader see whatever the scan made of the mutant, too.
    sidecar = mutant.with_suffix(".refs.json")
    write_index(index, sidecar, "native")
    return load_index(sidecar)


def _read(store, path: str, outcome: Outcome) -> np.ndarray | None:
    try:
        array = zarr.open_array(store, path=path, mode="r", zarr_format=2)
        return np.asarray(array[...])
    except RefindexError as exc:
        outcome.note("error", f"{path}: {type(exc).__name__}: {exc}"[:300])
    except Exception as exc:  # noqa: BLE001
        outcome.note("other", f"{path}: {_describe(exc)}")
    return None


def _describe(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)[-4:]
    where = " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in reversed(frames))
    return f"{type(exc).__name__}: {str(exc)[:200]} at {where}"


def _reference_values(kind: str, mutant: Path, paths: set[str]) -> dict[str, np.ndarray]:
    """What the format's own library reads from ``mutant``, for the arrays it can read."""
    readers = {"hdf5": _h5py_values, "hdf5_latest": _h5py_values, "netcdf3": _netcdf4_values,
               "netcdf3_64bit": _netcdf4_values, "tar": _tar_values, "zip": _zip_values,
               "zip_v3": _zip_values, "mrc": _mrcfile_values, "tiff": _tifffile_values}
    found: dict[str, np.ndarray] = {}
    with contextlib.suppress(Exception):  # a reference reader refusing the mutant: no oracle
        readers[kind](mutant, paths, found)
    return found


def _h5py_values(mutant: Path, paths: set[str], found: dict) -> None:
    with h5py.File(mutant, "r") as f:
        for path in paths:
            try:
                found[path] = np.asarray(f[path][()])
            except Exception:  # noqa: BLE001, S112
                continue


def _netcdf4_values(mutant: Path, paths: set[str], found: dict) -> None:
    with netCDF4.Dataset(mutant) as nc:
        nc.set_auto_maskandscale(False)
        for path in paths:
            try:
                found[path] = np.asarray(nc.variables[path][...])
            except Exception:  # noqa: BLE001, S112
                continue


def _mrcfile_values(mutant: Path, paths: set[str], found: dict) -> None:
    with mrcfile.open(mutant) as mrc:  # not permissive: a stamp it does not know, no oracle
        if "data" in paths and mrc.data is not None:
            found["data"] = np.array(mrc.data)


def _tifffile_values(mutant: Path, paths: set[str], found: dict) -> None:
    """tifffile's read of each series and level (``level`` or ``series/level``), except where
    a segment is half empty (an offset without a byte count or the reverse): tifffile 2026.3
    then takes the segments around it for one contiguous run and reads the next segment's
    bytes from the wrong place (refindex reads them where the IFD says)."""
    with tifffile.TiffFile(mutant) as tif:
        for path in paths:
            series, level = (0, int(path)) if "/" not in path else map(int, path.split("/"))
            try:
                pages = tif.series[series].levels[level].pages
                if any(_half_empty(page) for page in pages):
                    continue
                found[path] = tif.asarray(series=series, level=level)
            except Exception:  # noqa: BLE001, S112
                continue


def _half_empty(page) -> bool:
    offsets = np.asarray(page.dataoffsets)
    counts = np.asarray(page.databytecounts)
    return bool(((offsets == 0) != (counts == 0)).any())


def _zarr_values(store, paths: set[str], found: dict) -> None:
    for path in paths:
        try:
            found[path] = np.asarray(zarr.open_array(store, path=path, mode="r")[...])
        except Exception:  # noqa: BLE001, S112
            continue


def _zip_values(mutant: Path, paths: set[str], found: dict) -> None:
    store = zarr.storage.ZipStore(mutant, mode="r")
    try:
        _zarr_values(_PrefixStore(store), paths, found)
    finally:
        store.close()


def _tar_values(mutant: Path, paths: set[str], found: dict) -> None:
    with tarfile.open(mutant) as archive:
        files = {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}
    buffers = {name.removeprefix("store.zarr/"): zarr.core.buffer.cpu.Buffer.from_bytes(data)
               for name, data in files.items()}
    _zarr_values(zarr.storage.MemoryStore(buffers), paths, found)


class _PrefixStore(zarr.storage.WrapperStore):
    """The seeds' archives hold the store under ``store.zarr/``."""

    async def get(self, key, prototype, byte_range=None):
        return await self._store.get(f"store.zarr/{key}", prototype, byte_range)

    async def exists(self, key):
        return await self._store.exists(f"store.zarr/{key}")


def _same(expected: np.ndarray, actual: np.ndarray) -> bool:
    """Equal bit for bit (so NaN-aware), in either byte order (NetCDF3 is big-endian; netCDF4
    hands out native order)."""
    native = expected.dtype.newbyteorder("=")
    if expected.shape != actual.shape or native != actual.dtype.newbyteorder("="):
        return False
    expected, actual = expected.astype(native), actual.astype(native)
    return np.ascontiguousarray(expected).tobytes() == np.ascontiguousarray(actual).tobytes()


def _show(values: np.ndarray) -> str:
    return f"{values.dtype}{list(values.shape)} {np.array2string(values.ravel()[:6])}"
