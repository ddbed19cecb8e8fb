"""Read a sidecar with Dask: one task per stored chunk, the store pickled to the workers.

    python examples/dask_read.py
"""

import tempfile
from pathlib import Path

import dask
import xarray as xr

import refindex
from refindex.demo.run import write_sample


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        sample = Path(scratch) / "ocean.nc"
        write_sample(sample)
        sidecar = Path(scratch) / "ocean.refs.json"
        refindex.write_index(refindex.scan(sample).index, sidecar)

        ds = xr.open_dataset(sidecar, engine="refindex", chunks={})  # the file's own chunks
        print(ds.sst.data)  # a dask array
        with dask.config.set(scheduler="processes", num_workers=2):
            monthly = ds.sst.mean(dim=("lat", "lon")).compute()
        print(monthly.values)


if __name__ == "__main__":
    main()
