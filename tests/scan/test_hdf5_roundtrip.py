"""Every feature family scanned from a local file and from the S3 server, read back through
zarr and xarray, equals h5py bit for bit (NaN-aware), attributes included."""

from __future__ import annotations

import pytest

from refindex.scan import scan
from refindex.sidecar import write_index
from tests.roundtrip import assert_xarray_matches, assert_zarr_matches, scan_to_sidecar
from tests.scan import h5files

FAMILIES = {
    "layouts": h5files.layouts,
    "layouts_latest": lambda p: h5files.layouts(p, libver="latest"),
    "builtin_filters": h5files.builtin_filters,
    "plugin_filters": h5files.plugin_filters,
    "numeric_types": h5files.numeric_types,
    "numeric_types_latest": lambda p: h5files.numeric_types(p, libver="latest"),
    "string_types": h5files.string_types,
    "compound_types": h5files.compound_types,
    "vlen_and_references": h5files.vlen_and_references,
    "nested_types": h5files.nested_types,
    "dimension_scales": h5files.dimension_scales,
    "netcdf4": h5files.netcdf4,
}


@pytest.fixture(params=["local", "s3", "https"])
def where(request):
    """Where the file is scanned and read from: the local disk, the S3 test server or a plain
    HTTP server (the scheme is http on loopback; https goes through the same code)."""
    if request.param == "s3":
        return request.getfixturevalue("s3_location")
    if request.param == "https":
        server = request.getfixturevalue("http_server")
        return lambda path: server.put(path.name, path.read_bytes())
    return lambda path: str(path)


@pytest.fixture
def s3_location(s3_env, s3_bucket):
    def upload(path):
        return s3_env.upload(path, s3_bucket, path.name)

    return upload


@pytest.mark.parametrize("family", FAMILIES)
def test_zarr_reads_what_h5py_reads(family, where, tmp_path):
    path = tmp_path / f"{family}.h5"
    FAMILIES[family](path)
    sidecar = scan_to_sidecar(where(path), tmp_path)
    assert_zarr_matches(path, sidecar)


@pytest.mark.parametrize("family", FAMILIES)
def test_xarray_reads_what_h5py_reads(family, where, tmp_path):
    path = tmp_path / f"{family}.h5"
    FAMILIES[family](path)
    sidecar = scan_to_sidecar(where(path), tmp_path)
    assert_xarray_matches(path, sidecar)


def test_structure_with_links_local(tmp_path):
    path, external = tmp_path / "structure.h5", tmp_path / "external.h5"
    h5files.structure(path, external)
    sidecar = scan_to_sidecar(path, tmp_path)
    assert_zarr_matches(path, sidecar)
    assert_xarray_matches(path, sidecar, group="a/b/c")


def test_structure_from_s3_reports_the_external_link_it_cannot_follow(s3_location, tmp_path):
    path, external = tmp_path / "structure.h5", tmp_path / "external.h5"
    h5files.structure(path, external)
    result = scan(s3_location(path))
    assert any(s.startswith("external:") for s in result.skipped), result.skipped
    sidecar = tmp_path / "s.json"
    write_index(result.index, sidecar)
    assert_zarr_matches(path, sidecar, skip={"external"})
    assert_xarray_matches(path, sidecar, group="a/b/c")


def test_dangling_soft_link_and_cycle_are_reported_not_followed(tmp_path):
    path, external = tmp_path / "structure.h5", tmp_path / "external.h5"
    h5files.structure(path, external)
    result = scan(path)
    assert any(s.startswith("dangling:") for s in result.skipped)
    assert any(s.startswith("a/b/loop:") for s in result.skipped)
    assert "soft_link" in result.index.arrays and "hard_link" in result.index.arrays
