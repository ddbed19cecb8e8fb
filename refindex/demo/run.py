"""The demonstration behind ``refindex demo``: sample file → embedded S3 → remote scan →
xarray read, verified against netCDF4 and reported with request counts."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console

from refindex.scan import scan
from refindex.sidecar import write_index
from refindex.store import open_store

BUCKET = "refindex-demo"


def write_sample(path: Path) -> None:
    """A small ocean-like NetCDF4 file: 24 × 180 × 360 temperatures (gzip + shuffle, chunked,
    unlimited time, a land mask of _FillValue) and packed int16 salinity."""
    import netCDF4

    rng = np.random.default_rng(42)
    with netCDF4.Dataset(path, "w") as nc:
        nc.title = "refindex demo ocean"
        nc.createDimension("time", None)
        nc.createDimension("lat", 180)
        nc.createDimension("lon", 360)
        time_var = nc.createVariable("time", "f8", ("time",))
        time_var.units, time_var.calendar = "days since 2000-01-01", "standard"
        time_var[:] = np.arange(24) * 30.0
        nc.createVariable("lat", "f4", ("lat",))[:] = np.linspace(-89.5, 89.5, 180)
        nc.createVariable("lon", "f4", ("lon",))[:] = np.linspace(0.5, 359.5, 360)
        temp = nc.createVariable("sst", "f4", ("time", "lat", "lon"), zlib=True, shuffle=True,
                                 chunksizes=(1, 90, 180), fill_value=np.float32(-999.0))
        temp.units, temp.long_name = "degC", "sea surface temperature"
        lat = np.linspace(-89.5, 89.5, 180)[None, :, None]
        field = 28 * np.cos(np.deg2rad(lat)) + rng.normal(0, 0.5, (24, 180, 360))
        land = rng.random((180, 360)) < 0.3
        temp[:] = np.ma.masked_array(field.astype("f4"), np.broadcast_to(land, field.shape))
        salt = nc.createVariable("salinity", "i2", ("time", "lat", "lon"), zlib=True,
                                 chunksizes=(6, 180, 360), fill_value=np.int16(-32767))
        salt.scale_factor, salt.add_offset, salt.units = 0.001, 30.0, "psu"
        salt[:] = 30 + 5 * rng.random((24, 180, 360))


def run_demo(keep: str | None = None, console: Console | None = None) -> bool:
    """Run the demonstration; True when every value read through refindex was exact."""
    import netCDF4
    import xarray as xr

    from refindex.demo.embedded_s3 import EmbeddedS3

    console = console or Console()
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(keep) if keep else Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        sample = workdir / "ocean.nc"
        write_sample(sample)
        console.print(f"1. wrote {sample} ({sample.stat().st_size:,} bytes)")
        with EmbeddedS3(Path(scratch) / "s3") as server:
            server.create_bucket(BUCKET)
            server.upload(sample, BUCKET, "ocean.nc")
            url = f"s3://{BUCKET}/ocean.nc"
            console.print(f"2. started an S3 server at {server.endpoint_url} and uploaded {url}")
            options = {"endpoint_url": server.endpoint_url}
            with _environment(server.env()):
                ok = _scan_and_read(console, url, sample, workdir, options, netCDF4, xr)
    return ok


@contextlib.contextmanager
def _environment(variables: dict[str, str]):
    """The standard AWS chain finds the embedded server's credentials, for the demo only."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _scan_and_read(console: Console, url: str, sample: Path, workdir: Path, options: dict,
                   netCDF4, xr) -> bool:
    from refindex.io import ReadOptions

    result = scan(url, read_options=ReadOptions.from_env().replace(**options))
    sidecar = workdir / "ocean.refs.json"
    written = write_index(result.index, sidecar)
    console.print(f"3. scanned {url} remotely in {result.seconds:.2f} s: "
                  f"{result.index.chunk_count()} chunk references, read {result.fetched:,} of "
                  f"{result.size:,} bytes ({100 * result.fetched / result.size:.1f}%) in "
                  f"{result.requests} HTTP requests → {sidecar.name} ({written:,} bytes)")
    started = time.perf_counter()
    store = open_store(sidecar, **options)
    loaded = xr.open_dataset(store, engine="refindex").load()
    seconds = time.perf_counter() - started
    console.print(f"4. read it through xarray (engine='refindex') in {seconds:.2f} s: "
                  f"{store.engine.stats}")
    console.print(loaded)
    with xr.open_dataset(sample, engine="netcdf4") as reference:
        exact = all(loaded[name].equals(reference[name]) and
                    loaded[name].dtype == reference[name].dtype
                    for name in reference.variables)
    mean = float(loaded.sst.mean())
    console.print(f"5. every value equals netCDF4's: {'yes' if exact else 'NO'}; "
                  f"mean sea surface temperature {mean:.3f} degC")
    return exact
