"""Scan a NetCDF4 file into a sidecar, then read it through xarray and zarr.

    python examples/scan_and_read.py [DIR]
"""

import sys
import tempfile
from pathlib import Path

import xarray as xr
import zarr

import refindex
from refindex.demo.run import write_sample


def main(workdir: Path) -> None:
    sample = workdir / "ocean.nc"
    write_sample(sample)

    result = refindex.scan(sample)
    sidecar = workdir / "ocean.refs.json"
    refindex.write_index(result.index, sidecar)
    print(f"{result.index.chunk_count()} chunk references → {sidecar}")

    ds = xr.open_dataset(sidecar, engine="refindex")
    print(ds)
    print("mean sst:", float(ds.sst.mean()))

    group = zarr.open_group(refindex.open_store(sidecar), mode="r")
    print("sst[0, :2, :3] via zarr:", group["sst"][0, :2, :3])


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as scratch:
            main(Path(scratch))
