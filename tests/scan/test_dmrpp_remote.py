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
    # HEAD and GET of the document, one read of the data file's coordinates, whose answer
    # gives its size and ETag.
    assert imported.requests == 3
    assert imported.fetched < direct.fetched
    sidecar = tmp_path / "remote.json"
    write_index(imported.index, sidecar)
    assert_zarr_matches(nc, sidecar, read_options=FAST)


def test_scan_dmrpp_fetches_the_document_next_to_the_granule(on_s3):
    data_url, _, _ = on_s3
    direct = scan(data_url, read_options=FAST)
    imported = scan_dmrpp(data_url, read_options=FAST)
    assert imported.requests == 2  # the document, the coordinates
    assert_same_index(direct.index, imported.index)


def test_without_coordinates_to_copy_the_data_file_gets_a_head(on_s3):
    from refindex.scan import ScanOptions

    data_url, _, _ = on_s3
    imported = scan_dmrpp(data_url, ScanOptions(inline_coords=0), read_options=FAST)
    assert imported.requests == 2 and imported.index.sources[0].etag is not None


def test_a_truncated_remote_data_file_is_an_error(s3_env, s3_bucket, tmp_path):
    from refindex.errors import ContainerError

    nc = granule(tmp_path / "granule.nc")
    short = tmp_path / "short.nc"
    short.write_bytes(nc.read_bytes()[:20000])
    data_url = s3_env.upload(short, s3_bucket, "short.nc")
    s3_env.upload(write_dmrpp(nc, href=data_url), s3_bucket, "short.nc.dmrpp")
    with pytest.raises(ContainerError, match="past the end of the data file"):
        scan_dmrpp(data_url, read_options=FAST)


def test_a_changed_data_file_is_detected_when_read(on_s3, s3_env, s3_bucket, tmp_path):
    data_url, document_url, nc = on_s3
    sidecar = tmp_path / "before.json"
    write_index(scan(document_url, read_options=FAST).index, sidecar)
    changed = tmp_path / "changed.nc"
    changed.write_bytes(nc.read_bytes()[:-1] + b"\0")
    s3_env.upload(changed, s3_bucket, "daily/granule.nc")
    with pytest.raises(SourceChangedError):
        assert_zarr_matches(nc, sidecar, read_options=FAST)


def test_the_command_line_scans_a_granule_from_its_dmrpp(on_s3, tmp_path, capsys):
    data_url, _, _ = on_s3
    out = tmp_path / "cli.json"
    assert main(["scan", "--dmrpp", data_url, "-o", str(out)]) == 0
    assert data_url in capsys.readouterr().err
    assert load_index(out).sources[0].url == data_url


def test_a_collection_of_dmrpp_documents_imports_every_granule(s3_env, s3_bucket, tmp_path):
    from refindex.collection import collection_members, scan_collection

    direct = {}
    for day in range(3):
        nc = granule(tmp_path / f"day{day}.nc")
        url = s3_env.upload(nc, s3_bucket, f"coll/day{day}.nc")
        s3_env.upload(write_dmrpp(nc, href=url), s3_bucket, f"coll/day{day}.nc.dmrpp")
        direct[url] = scan(url, read_options=FAST).index
    pattern = f"s3://{s3_bucket}/coll/*.dmrpp"
    report = scan_collection([pattern], tmp_path / "coll", jobs=1, read_options=FAST)
    assert (report.listed, report.scanned, report.failed) == (3, 3, [])
    imported = [load_index(path) for path in collection_members(tmp_path / "coll")]
    assert sorted(index.sources[0].url for index in imported) == sorted(direct)
    for index in imported:
        assert_same_index(direct[index.sources[0].url], index)
    again = scan_collection([pattern], tmp_path / "coll", jobs=1, read_options=FAST)
    assert (again.kept, again.scanned) == (3, 0)  # the documents did not change
