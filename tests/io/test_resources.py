"""refindex closes what it opens: a scan of a remote source, the load of a remote sidecar and
a store that is closed leave no aiohttp session open, and a process that did all three ends
without a ResourceWarning ("Unclosed client session", an unclosed loop or socket)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
import xarray as xr
import zarr

import refindex
from refindex.io import sessions as sessions_module
from refindex.io.engine import ReadEngine
from refindex.sidecar import write_index
from refindex.store import ReferenceStore

VALUES = np.arange(4096, dtype="<f4").reshape(64, 64)


@pytest.fixture
def remote(http_server, tmp_path) -> tuple[str, str]:
    """(URL of an HDF5 file of 64 chunks, URL of its sidecar), served by ``http_server``."""
    with h5py.File(tmp_path / "t.h5", "w") as f:
        f.create_dataset("v", data=VALUES, chunks=(8, 8))
    url = http_server.put("t.h5", (tmp_path / "t.h5").read_bytes())
    write_index(refindex.scan(tmp_path / "t.h5", refindex.ScanOptions(url=url)).index,
                tmp_path / "t.refs.json")
    return url, http_server.put("t.refs.json", (tmp_path / "t.refs.json").read_bytes())


@pytest.fixture
def sessions(monkeypatch) -> list:
    """Every aiohttp session refindex opens during the test."""
    made = []
    new_session = sessions_module._new_session

    def recording(options):
        made.append(new_session(options))
        return made[-1]

    monkeypatch.setattr(sessions_module, "_new_session", recording)
    return made


def still_open(sessions: list) -> int:
    return sum(not session.closed for session in sessions)


@pytest.mark.filterwarnings("error")
def test_a_remote_scan_closes_its_sessions(remote, sessions):
    result = refindex.scan(remote[0])

    assert result.index.arrays["v"].zarray["shape"] == [64, 64]
    assert sessions and still_open(sessions) == 0


@pytest.mark.filterwarnings("error")
def test_loading_a_remote_sidecar_closes_its_sessions(remote, sessions):
    index = refindex.load_index(remote[1])

    assert "v" in index.arrays
    assert sessions and still_open(sessions) == 0


@pytest.mark.filterwarnings("error")
def test_a_closed_store_has_closed_its_sessions_on_every_loop(remote, sessions):
    with refindex.open_store(remote[1]) as store:
        assert np.array_equal(zarr.open_group(store, mode="r", zarr_format=2)["v"][:], VALUES)
        assert still_open(sessions) > 0  # on zarr's loop: the chunks were read there
    assert still_open(sessions) == 0

    store.close()  # again: nothing left to do
    assert np.array_equal(zarr.open_group(store, mode="r", zarr_format=2)["v"][:], VALUES)
    store.close()  # used again, closed again
    assert still_open(sessions) == 0


@pytest.mark.filterwarnings("error")
def test_closing_a_dataset_closes_the_store_the_backend_made(remote, sessions):
    with xr.open_dataset(remote[1], engine="refindex") as dataset:
        assert np.array_equal(dataset["v"].values, VALUES)
    assert sessions and still_open(sessions) == 0


def test_a_store_leaves_an_engine_passed_in_open(remote, sessions):
    engine = ReadEngine(refindex.ReadOptions())
    store = ReferenceStore(refindex.load_index(remote[1]), engine=engine)
    zarr.open_group(store, mode="r", zarr_format=2)["v"][:]
    store.close()

    assert store.engine is engine and still_open(sessions) > 0
    engine.close_sync()
    assert still_open(sessions) == 0


_SCENARIO = textwrap.dedent("""
    import gc, sys
    import zarr
    import refindex
    h5, sidecar = sys.argv[1:]
    refindex.scan(h5)
    refindex.load_index(sidecar)
    with refindex.open_store(sidecar) as store:
        zarr.open_group(store, mode="r", zarr_format=2)["v"][:]
    gc.collect()
    print("done")
""")


def test_a_process_that_scans_loads_and_reads_ends_without_resource_warnings(remote):
    run = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error", "-W", "error::ResourceWarning",
         "-c", _SCENARIO, *remote], capture_output=True, text=True, timeout=120)

    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "done"
    for sign in ("Unclosed", "unclosed", "ResourceWarning", "Exception ignored"):
        assert sign not in run.stderr, run.stderr
