"""The ``refindex`` command: help, scan (local, several files, --url, S3), inspect, exit codes.

Most tests run ``refindex.cli.main`` in-process; a few run the installed command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import zarr

import refindex
from refindex.cli import main

COMMANDS = ("scan", "inspect", "read", "convert", "demo")


def small_file(path: Path) -> Path:
    with h5py.File(path, "w") as f:
        f.create_dataset("temperature", data=np.arange(1000.0), chunks=(100,),
                         compression="gzip")
        f.create_group("meta").create_dataset("station", data=np.arange(12, dtype="i2"))
    return path


def refindex_command() -> list[str]:
    """The installed console script, or the module when only that is available."""
    script = shutil.which("refindex", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "refindex.cli"]


def run_installed(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*refindex_command(), *argv], capture_output=True, text=True,
                          timeout=120, **kwargs)


@pytest.fixture
def wide(monkeypatch):
    """Rich tables as wide as their content, so long paths are not cut."""
    monkeypatch.setenv("COLUMNS", "400")


@pytest.fixture
def h5(tmp_path) -> Path:
    return small_file(tmp_path / "small.h5")


# --- help -----------------------------------------------------------------------------------


def test_help_exits_0_and_explains_every_command(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    out = capsys.readouterr().out
    assert caught.value.code == 0
    for command in COMMANDS:
        assert command in out
    assert 'engine="refindex"' in out and "--debug" in out


@pytest.mark.parametrize("command, phrase", [("scan", "--max-inline"), ("inspect", "sidecar"),
                                             ("demo", "S3 server")])
def test_command_help_exits_0_and_explains(command, phrase, capsys):
    with pytest.raises(SystemExit) as caught:
        main([command, "--help"])
    out = capsys.readouterr().out
    assert caught.value.code == 0
    assert f"refindex {command}" in out and phrase in out


def test_installed_command_prints_help():
    result = run_installed("--help")
    assert result.returncode == 0 and "refindex scan" in result.stdout


# --- scan and inspect -----------------------------------------------------------------------


def test_scan_writes_the_sidecar_and_reports_it(h5, tmp_path, capsys):
    out = tmp_path / "small.json"
    assert main(["scan", str(h5), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "2 arrays, 11 chunks" in err and str(out) in err
    group = zarr.open_group(refindex.open_store(out), mode="r", zarr_format=2)
    np.testing.assert_array_equal(group["temperature"][...], np.arange(1000.0))


def test_scan_without_output_writes_name_refs_json_in_the_current_directory(h5, tmp_path,
                                                                           monkeypatch):
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    assert main(["scan", str(h5)]) == 0
    assert (workdir / "small.h5.refs.json").is_file()


def test_inspect_shows_arrays_chunks_and_sources(h5, tmp_path, capsys, wide):
    out = tmp_path / "small.json"
    main(["scan", str(h5), "-o", str(out)])
    capsys.readouterr()
    assert main(["inspect", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "/temperature" in shown and "/meta/station" in shown
    assert "(1000,)" in shown and "(100,)" in shown and "zlib" in shown
    assert "10/10" in shown  # chunks present of the grid
    assert str(h5) in shown and f"{h5.stat().st_size:,}" in shown
    assert "2 arrays, 11 chunks" in shown


def test_scan_of_several_files_makes_a_collection_with_one_sidecar_each(tmp_path, capsys):
    sources = [small_file(tmp_path / f"part{i}.h5") for i in range(3)]
    folder = tmp_path / "sidecars"
    assert main(["scan", *map(str, sources), "-o", str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["collection.json", "members"]
    members = sorted((folder / "members").iterdir())
    assert [p.name.startswith(f"part{i}.h5-") for i, p in enumerate(members)] == [True] * 3
    assert sorted(refindex.load_index(p).sources[0].url for p in members) == sorted(
        map(str, sources))
    assert "3 members listed: 3 scanned" in capsys.readouterr().err


def test_url_option_is_the_source_url_recorded_in_the_sidecar(h5, tmp_path):
    out = tmp_path / "small.json"
    url = "https://data.example.org/archive/small.h5"
    assert main(["scan", str(h5), "--url", url, "-o", str(out)]) == 0
    assert [s.url for s in refindex.load_index(out).sources] == [url]
    assert str(h5) not in out.read_text()


def test_url_option_with_several_sources_is_a_usage_error(tmp_path, capsys):
    sources = [str(small_file(tmp_path / f"part{i}.h5")) for i in range(2)]
    assert main(["scan", *sources, "--url", "https://example.org/x.h5"]) == 2
    assert "one source" in capsys.readouterr().err


def test_max_inline_option_reaches_the_scan(tmp_path, capsys):
    path = tmp_path / "strings.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("names", data=[f"n{i}" for i in range(100)], dtype=h5py.string_dtype())
    out = tmp_path / "out.json"
    assert main(["scan", str(path), "--max-inline", "10", "--strict", "-o", str(out)]) == 1
    assert main(["scan", str(path), "--max-inline", "10", "-o", str(out)]) == 4
    assert "names" in refindex.load_index(out).left_out
    assert main(["scan", str(path), "--max-inline", "100000", "-o", str(out)]) == 0
    assert "names" in refindex.load_index(out).arrays


def test_scan_from_s3_with_endpoint_url_option(s3_env, s3_bucket, h5, tmp_path, capsys,
                                               monkeypatch):
    url = s3_env.upload(h5, s3_bucket, "small.h5")
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name)  # only the option says where the server is
    out = tmp_path / "remote.json"
    assert main(["scan", url, "--endpoint-url", s3_env.endpoint_url, "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert url in err and "requests" in err
    index = refindex.load_index(out)
    assert index.sources[0].url == url and index.sources[0].etag
    store = refindex.open_store(out, endpoint_url=s3_env.endpoint_url)
    group = zarr.open_group(store, mode="r", zarr_format=2)
    np.testing.assert_array_equal(group["temperature"][...], np.arange(1000.0))


# --- exit codes -----------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["scan"], ["scan", "x.h5", "--bogus"],
                                  ["scan", "x.h5", "--max-inline", "lots"], ["inspect"]],
                         ids=["nothing", "unknown_command", "scan_without_source",
                              "unknown_option", "bad_number", "inspect_without_sidecar"])
def test_usage_errors_exit_2_with_usage_on_stderr(argv, capsys):
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert "usage: refindex" in capsys.readouterr().err


def test_installed_command_reports_an_error_in_one_line_and_exits_1(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a container\n")
    result = run_installed("scan", str(path), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {path}: not an HDF5 or NetCDF4 file, nor NetCDF3, TIFF, MRC, a DMR++ document "
        "or a Zarr archive (no signature of any)"]
    assert not list(tmp_path.glob("*.refs.json"))


def test_installed_command_shows_the_traceback_with_debug(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a container\n")
    result = run_installed("--debug", "scan", str(path), cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "ContainerError" in result.stderr


def test_installed_command_exits_2_on_a_usage_error():
    result = run_installed("scan")
    assert result.returncode == 2 and "usage:" in result.stderr


# --- demo -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_demo_runs_the_whole_round_trip(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT")}
    result = run_installed("demo", "--keep", str(tmp_path / "demo"), env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every value equals netCDF4's: yes" in result.stdout
    assert (tmp_path / "demo" / "ocean.refs.json").is_file()


# --- read -----------------------------------------------------------------------------------


def test_read_prints_every_array_and_the_engine_counters(h5, tmp_path, capsys):
    sidecar = tmp_path / "s.json"
    assert main(["scan", str(h5), "-o", str(sidecar)]) == 0
    capsys.readouterr()
    assert main(["read", str(sidecar), "--stats"]) == 0
    out = capsys.readouterr().out
    assert "/temperature: (1000,) float64" in out and "/meta/station: (12,) int16" in out
    assert "ranges asked" in out and "file read" in out


def test_read_applies_a_selection_to_the_named_array(h5, tmp_path, capsys):
    sidecar = tmp_path / "s.json"
    main(["scan", str(h5), "-o", str(sidecar)])
    capsys.readouterr()
    assert main(["read", str(sidecar), "-a", "temperature", "-s", "10:20"]) == 0
    out = capsys.readouterr().out
    assert "/temperature: (10,) float64, 80 bytes" in out and "station" not in out


@pytest.mark.parametrize("argv, phrase", [
    (["-a", "nowhere"], "has no array /nowhere"),
    (["-a", "temperature", "-s", "5000"], "does not apply to /temperature"),
    (["-s", "x"], "--select 'x'"),
])
def test_read_of_a_missing_array_or_a_bad_selection_is_a_usage_error(h5, tmp_path, capsys,
                                                                     argv, phrase):
    sidecar = tmp_path / "s.json"
    main(["scan", str(h5), "-o", str(sidecar)])
    capsys.readouterr()
    assert main(["read", str(sidecar), *argv]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("usage error: ") and phrase in lines[0]


def test_read_of_an_array_the_scan_left_out_names_it_and_the_reason(tmp_path, capsys):
    path = tmp_path / "strings.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("names", data=[f"n{i}" for i in range(100)], dtype=h5py.string_dtype())
    sidecar = tmp_path / "s.json"
    assert main(["scan", str(path), "--max-inline", "10", "-o", str(sidecar)]) == 4
    capsys.readouterr()
    assert main(["read", str(sidecar), "-a", "names"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "'/names': left out when the container was scanned" in lines[0]


def test_read_options_are_checked_before_reading(h5, tmp_path, capsys):
    sidecar = tmp_path / "s.json"
    main(["scan", str(h5), "-o", str(sidecar)])
    assert main(["read", str(sidecar), "-O", "no_such_option=1"]) == 2
    assert main(["read", str(sidecar), "-O", "max_concurrency=many"]) == 2
    assert main(["read", str(sidecar), "-O", "max_concurrency=4"]) == 0


def test_read_of_a_remote_sidecar_refuses_its_local_sources(h5, tmp_path, http_server, capsys):
    sidecar = tmp_path / "s.json"
    main(["scan", str(h5), "-o", str(sidecar)])  # names the local file
    url = http_server.put("remote.refs.json", sidecar.read_bytes())
    capsys.readouterr()
    assert main(["read", url, "-a", "temperature"]) == 1
    err = capsys.readouterr().err
    assert "refused by the source policy" in err and str(h5) in err


def _broken(args):
    raise ValueError("an unexpected\nproblem")


def test_an_unexpected_error_is_one_line_naming_the_command_and_the_bug(monkeypatch, capsys):
    monkeypatch.setattr("refindex.commands.inspect.run", _broken)
    code = main(["inspect", "whatever.json"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(lines) == 1
    assert lines[0] == ("error: refindex inspect: ValueError: an unexpected problem; this is a "
                        "bug; run with --debug for the traceback")


def test_debug_shows_the_traceback_of_an_unexpected_error(monkeypatch):
    monkeypatch.setattr("refindex.commands.inspect.run", _broken)
    with pytest.raises(ValueError, match="an unexpected"):
        main(["--debug", "inspect", "whatever.json"])


def test_a_file_that_cannot_be_written_is_one_line_not_a_bug(h5, tmp_path, capsys):
    out = tmp_path / "missing" / "deeper" / "s.json"
    assert main(["scan", str(h5), "-o", str(out)]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"error: refindex scan: {out}: No such file or directory"]


def test_help_imports_no_command_and_none_of_the_heavy_libraries():
    code = ("import sys\nfrom refindex.cli import build_parser\nbuild_parser(['--help'])\n"
            "print(sorted(m for m in sys.modules if m.startswith('refindex.commands.')"
            " or m.split('.')[0] in ('zarr', 'aiohttp', 'h5py', 'numpy', 'xarray')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "['refindex.commands.exit_codes']"


def test_a_command_imports_its_own_module_only():
    code = ("import sys\nfrom refindex.cli import build_parser\n"
            "build_parser(['--debug', 'inspect', 'x.json'])\n"
            "print(sorted(m for m in sys.modules if m.startswith('refindex.commands.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "refindex.commands.inspect" in out and "refindex.commands.scan'" not in out


@pytest.mark.parametrize("extra", [["--format", "kerchunk-parquet", "--layout", "file"],
                                   ["--format", "icechunk", "--layout", "file"],
                                   ["--branch", "dev"], ["--format", "kerchunk", "-m", "note"],
                                   ["--skip-unsupported"]],
                         ids=["parquet_file", "icechunk_file", "branch_native",
                              "message_kerchunk", "skip_native"])
def test_convert_options_that_do_not_go_together_exit_2(extra, tmp_path, capsys):
    assert main(["convert", str(tmp_path / "in.json"), str(tmp_path / "out"), *extra]) == 2
    assert capsys.readouterr().err.startswith("error: ")
