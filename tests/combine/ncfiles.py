"""Collections of NetCDF4 files for the combine and collection tests, written with netCDF4.

Each factory writes small files of a climate-like collection into a directory and returns
their paths in a scrambled order (combining must order members by coordinate values, not by
the order given).
"""

from __future__ import annotations

import datetime as dt
import zlib
from pathlib import Path

import netCDF4
import numpy as np

LAT, LON = 6, 8


def _grid(f: netCDF4.Dataset, lat: int = LAT, lon: int = LON, shift: float = 0.0) -> None:
    f.createDimension("lat", lat)
    f.createDimension("lon", lon)
    la = f.createVariable("lat", "f4", ("lat",))
    la[:] = np.linspace(-60, 60, lat) + shift
    la.units = "degrees_north"
    lo = f.createVariable("lon", "f4", ("lon",))
    lo[:] = np.linspace(0, 315, lon)
    lo.units = "degrees_east"


def _time(f: netCDF4.Dataset, values, units: str, dtype: str = "f8", calendar="standard",
          length: int | None = None, bounds: bool = False):
    f.createDimension("time", length)
    t = f.createVariable("time", dtype, ("time",))
    t.units = units
    t.calendar = calendar
    t[:] = values
    if bounds:
        f.createDimension("nv", 2)
        t.bounds = "time_bnds"
        b = f.createVariable("time_bnds", dtype, ("time", "nv"))
        b[:] = np.stack([np.asarray(values), np.asarray(values) + 1], axis=1)
    return t


def _field(f: netCDF4.Dataset, name: str, length: int, rng: np.random.Generator,
           chunk: int = 1, packed: dict | None = None, zlib: bool = True, units: str = "K"):
    if packed is not None:
        v = f.createVariable(name, "i2", ("time", "lat", "lon"), zlib=zlib, shuffle=zlib,
                             chunksizes=(chunk, LAT, LON // 2), fill_value=np.int16(-32767))
        v.scale_factor = np.float32(packed.get("scale_factor", 0.01))
        v.add_offset = np.float32(packed.get("add_offset", 273.0))
        v.units = units
        v[:] = rng.uniform(-40, 40, (length, LAT, LON)) + 273
        v[0, 0, 0] = np.ma.masked
        return v
    v = f.createVariable(name, "f4", ("time", "lat", "lon"), zlib=zlib, shuffle=zlib,
                         chunksizes=(chunk, LAT // 2, LON // 2), fill_value=np.float32(1e20))
    v.units = units
    data = rng.standard_normal((length, LAT, LON)).astype("f4") + 280
    data[0, 1, 1] = np.nan
    v[:] = data
    v[0, 0, 0] = np.ma.masked
    return v


def _scrambled(paths: list[Path]) -> list[Path]:
    order = np.random.default_rng(7).permutation(len(paths))
    return [paths[i] for i in order]


def daily(directory: Path, days: int = 12, start: str = "2020-01-01",
          own_units: bool = False, variables: tuple[str, ...] = ("tas",),
          name: str = "day", bounds: bool = False) -> list[Path]:
    """One file per day: ``time`` (1, unlimited), ``lat``, ``lon``, float fields. With
    ``own_units`` each file counts days since its own date."""
    directory.mkdir(parents=True, exist_ok=True)
    first = dt.date.fromisoformat(start)
    rng = np.random.default_rng(zlib.crc32(f"{start}{variables}".encode()))
    paths = []
    for d in range(days):
        day = first + dt.timedelta(days=d)
        path = directory / f"{name}-{day.isoformat()}.nc"
        with netCDF4.Dataset(path, "w") as f:
            _grid(f)
            units = f"days since {day.isoformat()}" if own_units else f"days since {start}"
            _time(f, [0.0 if own_units else float(d)], units, bounds=bounds)
            for variable in variables:
                _field(f, variable, 1, rng)
            f.title = "daily test collection"
            f.history = f"written for day {d}"
        paths.append(path)
    return _scrambled(paths)


def yearly(directory: Path, years=(2000, 2001, 2002, 2003, 2004), chunk: int = 30,
           packed: dict | None = None, calendar: str = "standard") -> list[Path]:
    """One file per year of daily values (365 or 366 days), time chunk ``chunk`` (which does
    not divide them), packed int16 ``pr`` and float ``tas``; each year counts from its start."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for year in years:
        length = 366 if (year % 4 == 0 and calendar == "standard") else 365
        path = directory / f"year-{year}.nc"
        rng = np.random.default_rng(year)
        with netCDF4.Dataset(path, "w") as f:
            _grid(f)
            _time(f, np.arange(length, dtype="i4"), f"days since {year}-01-01", dtype="i4",
                  calendar=calendar, length=length)
            _field(f, "pr", length, rng, chunk=chunk, packed=packed or {}, units="mm")
            _field(f, "tas", length, rng, chunk=chunk)
            f.title = "yearly test collection"
        paths.append(path)
    return _scrambled(paths)


def one_file(path: Path, start_day: int, length: int = 2, packed: dict | None = None,
             zlib: bool = True, lat_shift: float = 0.0, chunk: int = 1) -> Path:
    """A file of ``length`` days from ``start_day`` (days since 2020-01-01), for the members
    that must be refused."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(start_day)
    with netCDF4.Dataset(path, "w") as f:
        _grid(f, shift=lat_shift)
        _time(f, np.arange(start_day, start_day + length, dtype="f8"), "days since 2020-01-01")
        if packed is not None:
            _field(f, "pr", length, rng, chunk=chunk, packed=packed, zlib=zlib)
        else:
            _field(f, "tas", length, rng, chunk=chunk, zlib=zlib)
    return path


def ensemble(directory: Path, models=("alpha", "beta"), members=(1, 2, 3),
             days: int = 3) -> list[Path]:
    """``<model>_r<member>.nc``: the same days and grid, different values — two new
    dimensions, model and member."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for model in models:
        for member in members:
            path = directory / f"{model}_r{member}.nc"
            rng = np.random.default_rng(zlib.crc32(f"{model}{member}".encode()))
            with netCDF4.Dataset(path, "w") as f:
                _grid(f)
                _time(f, np.arange(days, dtype="f8"), "days since 2020-01-01")
                _field(f, "tas", days, rng)
                f.title = "ensemble"
                f.model = model
            paths.append(path)
    return _scrambled(paths)
