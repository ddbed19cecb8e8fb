"""Many files as one dataset: scan a collection of yearly NetCDF4 files (leap years, each year
counting days from its own start, a time chunk that divides no year) in parallel, combine it,
read it through xarray and zarr, then add a year and scan again — only that year is read.

    python examples/collection.py [DIR]

The same works on object storage: `scan_collection(["s3://bucket/yearly/"], ...)`.
"""

import sys
import tempfile
from pathlib import Path

import netCDF4
import numpy as np
import xarray as xr
import zarr

import refindex
from refindex.collection import scan_collection
from refindex.combine import CombineOptions


def write_year(path: Path, year: int) -> None:
    days = 366 if year % 4 == 0 else 365
    with netCDF4.Dataset(path, "w") as f:
        f.createDimension("time", days)
        f.createDimension("lat", 4)
        f.createDimension("lon", 8)
        time = f.createVariable("time", "i4", ("time",))
        time.units, time.calendar = f"days since {year}-01-01", "standard"
        time[:] = np.arange(days)
        tas = f.createVariable("tas", "f4", ("time", "lat", "lon"), zlib=True,
                               chunksizes=(30, 4, 8), fill_value=np.float32(1e20))
        tas.units = "K"
        tas[:] = np.random.default_rng(year).normal(280, 10, (days, 4, 8)).astype("f4")


def main(workdir: Path) -> None:
    files = workdir / "yearly"
    files.mkdir()
    for year in (2000, 2001, 2002, 2003):
        write_year(files / f"tas-{year}.nc", year)

    combine = CombineOptions(concat_dims=("time",))
    report = scan_collection([str(files / "*.nc")], workdir / "tas.refs", jobs=2,
                             combine_options=combine)
    print(f"scanned {report.scanned} members; combined: {report.combined.combined['dims']}")

    ds = xr.open_dataset(workdir / "tas.refs", engine="refindex", chunks={})
    print(ds.tas)
    print("dask chunks along time (the members' own):", ds.tas.chunks[0][:14], "...")
    with xr.open_mfdataset(sorted(files.glob("*.nc")), combine="by_coords") as reference:
        assert ds.identical(reference.load()), "refindex and open_mfdataset disagree"
    print("identical to xr.open_mfdataset on the files")

    group = zarr.open_group(refindex.open_store(workdir / "tas.refs"), mode="r")
    print("zarr reads it re-tiled into chunks of", group["tas"].chunks)

    write_year(files / "tas-2004.nc", 2004)
    again = scan_collection([], workdir / "tas.refs")  # the sources and combine recorded
    print(f"after adding a year: {again.scanned} scanned, {again.kept} unchanged; "
          f"time now {again.combined.arrays['time'].zarray['shape'][0]} days")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as scratch:
            main(Path(scratch))
