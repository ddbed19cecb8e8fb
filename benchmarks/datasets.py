"""Benchmark data, made once and kept in ``benchmarks/.data`` (not committed)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

DATA = Path(__file__).resolve().parent / ".data"


def volume(gib: float = 1.0) -> Path:
    """A float32 3-D volume of ``gib`` GiB in 64³ chunks, gzip + shuffle, values rounded to
    1/1000 of a smooth field so that it compresses to about a third, as real volumes do."""
    side = round((gib * 2**30 / 4) ** (1 / 3) / 64) * 64
    shape = (side // 2, side, side * 2) if gib >= 1 else (side, side, side)
    path = DATA / f"volume-{shape[0]}x{shape[1]}x{shape[2]}.h5"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    partial = path.with_suffix(".partial")
    with h5py.File(partial, "w") as f:
        dset = f.create_dataset("volume", shape=shape, dtype="f4", chunks=(64, 64, 64),
                                compression="gzip", compression_opts=4, shuffle=True)
        y, x = np.meshgrid(np.arange(shape[1]), np.arange(shape[2]), indexing="ij")
        for z0 in range(0, shape[0], 64):
            z = np.arange(z0, min(z0 + 64, shape[0]))[:, None, None]
            field = np.sin(x / 37.0 + z / 19.0) * np.cos(y / 23.0) * 100
            field = field + rng.normal(0, 0.05, field.shape)
            dset[z0:z0 + 64] = np.round(field, 3).astype("f4")
    partial.rename(path)
    return path


def many_chunks(chunks: int = 200_000) -> Path:
    """A 2-D float32 array with ``chunks`` small chunks (20 × 2 values, 160 bytes each)."""
    rows = 20 * 200
    cols = 2 * (chunks // 200)
    path = DATA / f"many-chunks-{chunks}.h5"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with h5py.File(partial, "w") as f:
        data = np.arange(rows * cols, dtype="f4").reshape(rows, cols)
        f.create_dataset("data", data=data, chunks=(20, 2))
    partial.rename(path)
    return path


def climate(planes: int = 100) -> Path:
    """A NetCDF4 climate-like file: ``planes`` × 1024 × 1024 float32 in 32 × 32 chunks
    (zlib + shuffle, about 1.4 KB each), with time/lat/lon coordinates: 1,024 chunks a plane."""
    import netCDF4

    path = DATA / f"climate-{planes}x1024x1024.nc"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    rng = np.random.default_rng(11)
    with netCDF4.Dataset(partial, "w") as nc:
        nc.createDimension("time", None)
        nc.createDimension("lat", 1024)
        nc.createDimension("lon", 1024)
        time = nc.createVariable("time", "f8", ("time",))
        time.units = "days since 2000-01-01"
        time[:] = np.arange(planes)
        nc.createVariable("lat", "f4", ("lat",))[:] = np.linspace(-90, 90, 1024)
        nc.createVariable("lon", "f4", ("lon",))[:] = np.linspace(0, 360, 1024, endpoint=False)
        tas = nc.createVariable("tas", "f4", ("time", "lat", "lon"), zlib=True, shuffle=True,
                                complevel=4, chunksizes=(1, 32, 32))
        tas.units = "K"
        lat = np.linspace(-90, 90, 1024)[:, None]
        base = 288 - 30 * np.sin(np.deg2rad(lat)) ** 2 + np.zeros((1, 1024))
        for t in range(planes):
            tas[t] = np.round(base + rng.normal(0, 2.0, (1024, 1024)), 1).astype("f4")
    partial.rename(path)
    return path
