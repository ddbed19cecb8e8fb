"""xr.open_dataset(sidecar) without engine= opens refindex's sidecars through refindex, with
kerchunk installed (its engine claims every .json): refindex declares its backend a second
time as "_refindex", which xarray asks before "kerchunk" and which claims only what refindex
wrote or names. The engines are built from the entry points pyproject.toml declares, as an
installed refindex registers them."""

from __future__ import annotations

import json
import tomllib
from importlib.metadata import EntryPoint, EntryPoints, entry_points
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr
from xarray.backends import plugins

import refindex
from refindex.collection import scan_collection
from refindex.combine import CombineOptions
from refindex.xarray.backend import RefindexBackendEntrypoint, RefindexSidecarEntrypoint
from tests.roundtrip import kerchunk_refs, scan_to_sidecar

PYPROJECT = Path(__file__).parents[2] / "pyproject.toml"


@pytest.fixture
def engines(monkeypatch) -> dict:
    """xarray's engines as an installation of this tree registers them."""
    declared = tomllib.loads(PYPROJECT.read_text())["project"]["entry-points"]["xarray.backends"]
    ours = [EntryPoint(name, value, "xarray.backends") for name, value in declared.items()]
    others = [entry for entry in entry_points(group="xarray.backends")
              if not entry.value.startswith("refindex.")]
    built = plugins.build_engines(EntryPoints(ours + others))
    monkeypatch.setattr(plugins, "list_engines", lambda: built)
    return built


def daily_file(path, day: int = 0) -> None:
    with h5py.File(path, "w") as f:
        time = f.create_dataset("time", data=np.array([day], "i4"))
        time.make_scale("time")
        values = f.create_dataset("values", data=np.array([[day * 1.5, 2.0]], "f4"))
        values.dims[0].attach_scale(time)


@pytest.fixture(scope="module")
def h5(tmp_path_factory):
    path = tmp_path_factory.mktemp("guess") / "day.h5"
    daily_file(path)
    return path


def written(h5, path: Path, format: str = "native", layout: str = "file") -> Path:
    refindex.write_index(refindex.scan(str(h5)).index, path, format, layout=layout)
    return path


def assert_opens_through_refindex(sidecar) -> None:
    assert plugins.guess_engine(str(sidecar)) == "_refindex"
    xr.testing.assert_identical(xr.open_dataset(sidecar),
                                xr.open_dataset(sidecar, engine="refindex"))


def test_xarray_asks_refindex_before_kerchunk(engines):
    names = list(engines)
    assert "kerchunk" in names  # installed, and it claims every .json
    assert names.index("_refindex") < names.index("kerchunk") < names.index("refindex")


def test_kerchunk_claims_our_sidecars_too(engines, h5, tmp_path):
    assert engines["kerchunk"].guess_can_open(str(written(h5, tmp_path / "day.json")))


@pytest.mark.parametrize("format", ["native", "kerchunk"])
def test_a_sidecar_refindex_wrote_opens_without_engine(engines, h5, tmp_path, format):
    assert_opens_through_refindex(written(h5, tmp_path / "day.json", format))


def test_a_directory_sidecar_opens_without_engine(engines, h5, tmp_path):
    assert_opens_through_refindex(written(h5, tmp_path / "day.refs", layout="directory"))


def test_a_combined_collection_opens_without_engine(engines, tmp_path):
    days = []
    for day in range(2):
        days.append(str(tmp_path / f"day{day}.h5"))
        daily_file(days[-1], day)
    collection = tmp_path / "daily.refs"
    scan_collection(days, collection, jobs=1,
                    combine_options=CombineOptions(concat_dims=["time"]))
    assert_opens_through_refindex(collection)
    assert xr.open_dataset(collection).sizes["time"] == 2


def test_a_collection_not_yet_combined_is_claimed_and_says_what_to_do(engines, h5, tmp_path):
    collection = tmp_path / "daily.refs"
    scan_collection([str(h5)], collection, jobs=1)
    assert plugins.guess_engine(str(collection)) == "_refindex"
    with pytest.raises(refindex.errors.SidecarError, match="refindex combine"):
        xr.open_dataset(collection)


def test_a_kerchunk_sidecar_named_refs_json_opens_through_refindex(engines, h5, tmp_path):
    sidecar = tmp_path / "day.refs.json"
    sidecar.write_text(json.dumps(kerchunk_refs(h5)))
    assert_opens_through_refindex(sidecar)


def test_other_kerchunk_sidecars_are_left_to_kerchunk(engines, h5, tmp_path):
    sidecar = tmp_path / "day.json"
    sidecar.write_text(json.dumps(kerchunk_refs(h5)))
    assert plugins.guess_engine(str(sidecar)) == "kerchunk"
    assert RefindexBackendEntrypoint().guess_can_open(str(sidecar))  # engine="refindex" opens it


def test_kerchunk_json_of_older_refindex_is_recognised_by_its_end(engines, h5, tmp_path):
    doc = json.loads(scan_to_sidecar(h5, tmp_path, format="kerchunk").read_text())
    provenance = doc.pop("refindex")
    doc["refs"].update({f"padding/{i}": "x" * 100 for i in range(1000)})  # > the bytes sniffed
    doc["refindex"] = provenance  # last, as refindex wrote it before
    sidecar = tmp_path / "older.json"
    sidecar.write_text(json.dumps(doc))
    assert RefindexSidecarEntrypoint().guess_can_open(str(sidecar))


def test_an_index_or_store_opens_without_engine(engines, h5):
    index = refindex.scan(str(h5)).index
    assert plugins.guess_engine(index) == "_refindex"
    assert plugins.guess_engine(refindex.open_store(index)) == "_refindex"


def test_hdf5_files_are_left_to_their_engines(engines, h5):
    assert plugins.guess_engine(str(h5)) in ("netcdf4", "h5netcdf")
    assert not RefindexSidecarEntrypoint().guess_can_open(str(h5))


@pytest.mark.parametrize("content", ['{"name": "not a sidecar"}', '{"refs": {}}', "[1, 2]"],
                         ids=["other_json", "bare_kerchunk", "json_list"])
def test_the_early_engine_claims_nothing_refindex_did_not_write(tmp_path, content):
    path = tmp_path / "other.json"
    path.write_text(content)
    assert not RefindexSidecarEntrypoint().guess_can_open(str(path))
