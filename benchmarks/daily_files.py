"""A collection of daily NetCDF4 files for the combine benchmark: written once into a cache
directory, uploaded to S3 in parallel, and read back with netCDF4 through
``xr.open_mfdataset`` for the values every tool must reproduce.

Each file ``day-YYYY-MM-DD.nc`` holds one day (days since 2000-01-01): ``time`` (unlimited,
length 1), ``lat`` 180, ``lon`` 360, and ``tas`` and ``pr`` as float32 in chunks of
(1, 90, 180), zlib level 4 + shuffle, with a ``_FillValue`` that some values take (``tas``
near the poles every day, and around the benchmark's point every 50th day), so a reader that
ignores it is caught.
"""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import numpy as np

LAT, LON, CHUNKS = 180, 360, (1, 90, 180)
FILL = np.float32(1e20)
POINT = (90, 180)  # (lat, lon) index of the point whose time series the benchmark reads
EPOCH = np.datetime64("2000-01-01", "D")
_LAYOUT = "1"  # bump when the files' content changes: cached collections are rewritten


def file_names(count: int) -> list[str]:
    """``day-YYYY-MM-DD.nc`` for ``count`` days from 2000-01-01, in time order."""
    return [f"day-{EPOCH + d}.nc" for d in range(count)]


def daily_files(count: int, directory: Path) -> list[Path]:
    """The ``count`` files in ``directory``, written unless a complete set is there."""
    paths = [directory / name for name in file_names(count)]
    marker = directory / ".complete"
    if marker.exists() and marker.read_text() == f"{_LAYOUT} {count}" and all(
            p.exists() for p in paths):
        return paths
    directory.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    for stale in [*directory.glob("day-*.nc"), directory / "reference.npz"]:
        stale.unlink(missing_ok=True)
    with concurrent.futures.ProcessPoolExecutor() as pool:  # netCDF4 writes on every core
        list(pool.map(_write_day, paths, range(count), chunksize=64))
    marker.write_text(f"{_LAYOUT} {count}")
    return paths


def _climatology() -> np.ndarray:
    """A smooth temperature field (K): warm at the equator, with zonal waves."""
    lat = np.linspace(-89.5, 89.5, LAT, dtype="f4")[:, None]
    lon = np.linspace(0.5, 359.5, LON, dtype="f4")[None, :]
    return (288 - 40 * np.sin(np.deg2rad(lat)) ** 2
            + 3 * np.cos(np.deg2rad(3 * lon)) * np.cos(np.deg2rad(lat))).astype("f4")


def _fields(day: int) -> tuple[np.ma.MaskedArray, np.ndarray]:
    """``tas`` (masked where missing) and ``pr`` of ``day``: the same for a day whatever the
    collection's size, rounded so that they compress about 3:1, as measured fields do."""
    rng = np.random.default_rng(day)
    season = np.float32(8 * np.sin(2 * np.pi * day / 365.25))
    tas = np.round(_climatology() + season + rng.standard_normal((LAT, LON), dtype="f4"), 2)
    missing = np.zeros((LAT, LON), dtype=bool)
    missing[:3] = missing[-3:] = True
    if day % 50 == 7:  # a station outage: the point's series has gaps
        missing[POINT[0] - 2:POINT[0] + 2, POINT[1] - 2:POINT[1] + 2] = True
    pr = np.round(np.maximum(rng.standard_normal((LAT, LON), dtype="f4") * 4 - 2, 0), 1)
    return np.ma.masked_array(tas, missing), pr


def _write_day(path: Path, day: int) -> None:
    import netCDF4

    tas, pr = _fields(day)
    partial = path.with_suffix(".partial")
    with netCDF4.Dataset(partial, "w") as f:
        f.createDimension("time", None)
        f.createDimension("lat", LAT)
        f.createDimension("lon", LON)
        time = f.createVariable("time", "f8", ("time",))
        time.units, time.calendar, time.standard_name = (
            "days since 2000-01-01", "standard", "time")
        time[:] = [day]
        for name, size, step, units in (("lat", LAT, 180 / LAT, "degrees_north"),
                                        ("lon", LON, 360 / LON, "degrees_east")):
            var = f.createVariable(name, "f4", (name,))
            var.units, var.standard_name = units, "latitude" if name == "lat" else "longitude"
            start = -90 + step / 2 if name == "lat" else step / 2
            var[:] = start + step * np.arange(size, dtype="f4")
        for name, values, units in (("tas", tas, "K"), ("pr", pr, "mm day-1")):
            var = f.createVariable(name, "f4", ("time", "lat", "lon"), zlib=True,
                                   complevel=4, shuffle=True, chunksizes=CHUNKS,
                                   fill_value=FILL)
            var.units = units
            var[0] = values
        f.title = "refindex combine benchmark: daily fields"
        f.Conventions = "CF-1.8"
        f.history = f"{EPOCH + day}: written by benchmarks/daily_files.py"
    partial.rename(path)


def upload(server, paths: list[Path], bucket: str, prefix: str) -> None:
    """Put ``paths`` under ``prefix`` in ``bucket`` (straight to the server, not through the
    proxy), many at once, unless every one is there already with its size."""
    client = server.client()
    present = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        present.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
    missing = [p for p in paths if present.get(prefix + p.name) != p.stat().st_size]

    def put(path: Path) -> None:
        with open(path, "rb") as f:
            client.put_object(Bucket=bucket, Key=prefix + path.name, Body=f)

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(put, missing))


def reference_values(paths: list[Path], directory: Path) -> dict[str, np.ndarray]:
    """What every tool must read: the point's series of ``tas``, the middle day's map and the
    decoded ``time``, from ``xr.open_mfdataset(engine="netcdf4", combine="by_coords")`` on the
    local files (kept in ``directory/reference.npz`` for the next run)."""
    cached = directory / "reference.npz"
    if cached.exists():
        with np.load(cached) as saved:
            return dict(saved)
    import xarray as xr

    with xr.open_mfdataset(paths, engine="netcdf4", combine="by_coords") as ds:
        values = {"series": ds["tas"][:, POINT[0], POINT[1]].values,
                  "map": ds["tas"].isel(time=ds.sizes["time"] // 2).values,
                  "time": ds["time"].values}
    np.savez(cached, **values)
    return values
