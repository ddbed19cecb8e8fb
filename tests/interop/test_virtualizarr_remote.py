"""refindex.virtualizarr.Parser on S3 (the SeaweedFS server): the endpoint, region and
signing come from the registry's obstore S3Store, credentials from the AWS chain; chunks are
then read by VirtualiZarr through obstore."""

from __future__ import annotations

import h5py
import numpy as np
import virtualizarr as vz
import xarray as xr
from obspec_utils.registry import ObjectStoreRegistry
from obstore.store import S3Store

import refindex
from refindex.virtualizarr import Parser
from tests.interop.virtual import RAW, assert_same, reference


def _registry(server, bucket: str) -> ObjectStoreRegistry:
    store = S3Store(bucket, endpoint=server.endpoint_url, region=server.region,
                    access_key_id=server.access_key, secret_access_key=server.secret_key,
                    virtual_hosted_style_request=False, client_options={"allow_http": True})
    return ObjectStoreRegistry({f"s3://{bucket}": store})


def _credentials_only(server, monkeypatch) -> None:
    """The AWS chain has the keys but no endpoint: only the registry says where S3 is."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", server.secret_key)


def _file(path):
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.arange(30.0))
        data = f.create_dataset("data", data=np.arange(900, dtype="f4").reshape(30, 30),
                                chunks=(10, 10), compression="gzip", shuffle=True)
        f["x"].make_scale("x")
        data.dims[0].attach_scale(f["x"])
        data.dims[1].attach_scale(f["x"])
        f.create_dataset("names", data=np.array(["a", "bb"], dtype=h5py.string_dtype()))
    return path


def test_a_remote_file_scans_with_the_registry_endpoint(s3_server, s3_bucket, monkeypatch,
                                                        tmp_path):
    path = _file(tmp_path / "remote.h5")
    url = s3_server.upload(path, s3_bucket, "data/remote.h5")
    _credentials_only(s3_server, monkeypatch)
    registry = _registry(s3_server, s3_bucket)
    store = Parser()(url, registry)
    vds = store.to_virtual_dataset()
    assert vds["data"].data.manifest._paths[0, 0] == url
    values = xr.open_zarr(store, zarr_format=3, consolidated=False, **RAW).load()
    assert_same(values, reference(path))
    opened = vz.open_virtual_dataset(url, registry=registry, parser=Parser(),
                                     loadable_variables=["data", "x", "names"])
    assert_same(opened.load(), reference(path))


def test_a_remote_sidecar_reads_as_its_file(s3_server, s3_bucket, monkeypatch, tmp_path):
    path = _file(tmp_path / "remote.h5")
    url = s3_server.upload(path, s3_bucket, "data/remote.h5")
    _credentials_only(s3_server, monkeypatch)
    registry = _registry(s3_server, s3_bucket)
    index = refindex.scan(url, read_options=refindex.ReadOptions(
        endpoint_url=s3_server.endpoint_url)).index
    sidecar = tmp_path / "remote.refs.json"
    refindex.write_index(index, sidecar)
    sidecar_url = s3_server.upload(sidecar, s3_bucket, "refs/remote.refs.json")
    store = Parser()(sidecar_url, registry)
    values = xr.open_zarr(store, zarr_format=3, consolidated=False, **RAW).load()
    assert_same(values, reference(path))
