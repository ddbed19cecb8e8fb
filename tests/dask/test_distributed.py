"""Reading through dask.distributed: the store pickles to worker processes, and each worker
resolves and pools on its own."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from tests.roundtrip import scan_to_sidecar
from tests.scan import h5files

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.slow  # see pyproject's markers


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, host="127.0.0.1") as cluster, \
            distributed.Client(cluster) as client:
        yield client


def test_two_worker_processes_read_an_s3_sidecar_exactly(cluster, s3_env, s3_bucket, tmp_path):
    path = tmp_path / "climate.nc"
    h5files.netcdf4(path)
    sidecar = scan_to_sidecar(s3_env.upload(path, s3_bucket, "climate.nc"), tmp_path)
    # The workers were started before the test set AWS_*: hand them the endpoint explicitly,
    # credentials through the environment of the workers.
    cluster.run(_set_environment, s3_env.env())
    ds = xr.open_dataset(sidecar, engine="refindex", chunks={},
                         storage_options={"endpoint_url": s3_env.endpoint_url})
    reference = xr.open_dataset(path, engine="netcdf4")
    temp = ds["temp"].data.compute()
    np.testing.assert_array_equal(temp, reference["temp"].values)
    workers = {w for w in cluster.run(_worker_pid).values()}
    assert len(workers) == 2


@pytest.mark.filterwarnings("ignore:The specified chunks separate")
def test_tasks_smaller_than_stored_chunks_read_exact_values(cluster, s3_env, s3_bucket,
                                                            tmp_path):
    path = tmp_path / "climate.nc"
    h5files.netcdf4(path)
    sidecar = scan_to_sidecar(s3_env.upload(path, s3_bucket, "climate.nc"), tmp_path)
    cluster.run(_set_environment, s3_env.env())
    # One time step per task: several tasks on both workers read parts of each stored chunk.
    ds = xr.open_dataset(sidecar, engine="refindex", chunks={"time": 1},
                         storage_options={"endpoint_url": s3_env.endpoint_url})
    reference = xr.open_dataset(path, engine="netcdf4")
    xr.testing.assert_identical(ds["temp"].compute(), reference["temp"])


def _set_environment(variables: dict) -> None:
    import os

    os.environ.update(variables)


def _worker_pid() -> int:
    import os

    return os.getpid()


def test_a_collection_is_scanned_on_the_cluster_and_combined_exactly(cluster, s3_env, s3_bucket,
                                                                     tmp_path):
    from refindex.collection import scan_collection
    from refindex.combine import CombineOptions
    from tests.combine import ncfiles
    from tests.combine.test_combine import assert_same_dataset, reference

    paths = ncfiles.yearly(tmp_path / "yearly", years=(2000, 2001, 2002, 2003), chunk=30)
    for path in paths:
        s3_env.upload(path, s3_bucket, f"yearly/{path.name}")
    cluster.run(_set_environment, s3_env.env())
    report = scan_collection([f"s3://{s3_bucket}/yearly/"], tmp_path / "coll", client=cluster,
                             combine_options=CombineOptions(concat_dims=("time",)))
    assert report.scanned == 4 and not report.failed
    ds = xr.open_dataset(tmp_path / "coll", engine="refindex", chunks={})
    # The combined leap-year array is read by the workers, along the members' own chunks.
    assert ds.pr.chunks[0][:13] == (30,) * 12 + (6,)
    assert_same_dataset(ds.compute(), reference(paths))
