"""DMR++ import of granules on S3: the document fetched through the engine, the data file's
identity from one HEAD, and the same sidecar as a remote scan of the data file."""

from __future__ import annotations

import pytest

from refindex.cli import main
from refindex.errors import SourceChangedError
from refindex.io import ReadOptions
from refindex.scan import scan, scan_dmrpp
from refindex.sidecar import load_index, write_index
from tests.roundtrip import assert_zarr_matches
from tests.scan.dmrppfiles import granule, write_dmrpp
from tests.scan.test_dmrpp import assert_same_index

FAST = ReadOptions(retries=1, backoff_base=0.01, backoff_max=0.05, timeout=10)


@pytest.fixture
def on_s3(s3_env, s3_bucket, tmp_path):
    """A granule and its DMR++ (href: the granule's s3:// URL) on S3: their URLs, local path."""
    nc = granule(tmp_path / "granule.nc")
    data_url = s3_env.upload(nc, s3_bucket, "daily/granule.nc")
    document = write_dmrpp(nc, href=data_url)
    return data_url, s3_env.upload(document, s3_bucket, "daily/granule.nc.dmrpp"), nc


def test_a_remote_dmrpp_imports_as_the_remote_scan_of_its_data_file(on_s3, tmp_path):
    data_url, document_url, nc = on_s3
    direct = scan(data_url, read_options=FAST)
    imported = scan(document_url, read_options=FAST)
    assert imported.url == data_url and imported.size == direct.size
    assert imported.index.sources[0].etag == direct.index.sources[0].etag is not None
    assert_same_index(direct.index, imported.index)
    # HEAD and GET of the document, HEAD of the data file, one read of its coordinates.
    assert imported.requests == 4
    assert imported.fetched < direct.fetched
    sidecar = tmp_path / "remote.json"
    write_index(imported.index, sidecar)
    assert_zarr_matches(nc, sidecar, skip=frozenset({"names"}), read_options=FAST)


def test_scan_dmrpp_fetches_the_document_next_to_the_granule(on_s3):
    data_url, _, _ = on_s3
    direct = scan(data_url, read_options=FAST)
    imported = scan_dmrpp(data_url, read_options=FAST)
    assert imported.requests == 3  # no HEAD of the document
    assert_same_index(direct.index, imported.index)


def test_a_changed_data_file_is_detected_when_read(on_s3, s3_env, s3_bucket, tmp_path):
    data_url, document_url, nc = on_s3
    sidecar = tmp_path / "before.json"
    write_index(scan(document_url, read_options=FAST).index, sidecar)
    changed = tmp_path / "changed.nc"
    changed.write_bytes(nc.read_bytes()[:-1] + b"\0")
    s3_env.upload(changed, s3_bucket, "daily/granule.nc")
    with pytest.raises(SourceChangedError):
        assert_zarr_matches(nc, sidecar, skip=frozenset({"names"}), read_options=FAST)


def test_the_command_line_scans_a_granule_from_its_dmrpp(on_s3, tmp_path, capsys):
    data_url, _, _ = on_s3
    out = tmp_path / "cli.json"
    assert main(["scan", "--dmrpp", data_url, "-o", str(out)]) == 4  # "names" left out
    assert "left out: /names: DAP4 String variable" in capsys.readouterr().err
    assert load_index(out).sources[0].url == data_url
