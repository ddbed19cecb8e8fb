"""What can be served and how it is named: the command line and the configuration file, and
the errors for what cannot be (each naming the dataset or option); the command runs until
SIGTERM and then stops cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from refindex.cli import build_parser, main
from refindex.commands.serve import config_from
from refindex.demo.embedded_s3 import free_ports
from refindex.serve.config import DatasetConfig, ServeConfigError, default_name, load_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("sidecar", "name"), [
    ("data/ocean.refs.json", "ocean"), ("s3://bucket/x/era5.json", "era5"),
    ("daily.refs/", "daily"), ("plain", "plain"), ("/a/b.nc.refs.json", "b.nc"),
])
def test_a_sidecar_is_named_by_its_file(sidecar, name):
    assert default_name(sidecar) == name


@pytest.mark.parametrize("name", ["metrics", "healthz", "", "../x", "a/b", ".hidden", "-x",
                                  "a b"])
def test_names_that_could_not_be_paths_are_refused(name):
    with pytest.raises(ServeConfigError, match="dataset name"):
        DatasetConfig(name, "x.json")


def test_an_unknown_transcoding_is_refused():
    with pytest.raises(ServeConfigError, match="transcode 'lzma'"):
        DatasetConfig("x", "x.json", transcode="lzma")


def test_the_command_line_names_datasets_and_options():
    args = build_parser().parse_args(["serve", "a/ocean.refs.json", "sea=b/other.json",
                                      "--port", "9000", "--transcode", "gzip",
                                      "--zarr-format", "both", "--cors-origin", "https://x"])
    config = config_from(args)
    assert [(d.name, d.sidecar) for d in config.datasets] == [
        ("ocean", "a/ocean.refs.json"), ("sea", "b/other.json")]
    assert config.port == 9000 and config.host == "127.0.0.1"
    assert config.cors_origins == ("https://x",)
    assert all(d.transcode == "gzip" and d.zarr_formats == (2, 3) for d in config.datasets)


def test_two_sidecars_of_one_name_are_refused():
    args = build_parser().parse_args(["serve", "a/x.json", "b/x.refs.json"])
    with pytest.raises(ServeConfigError, match="used twice: x"):
        config_from(args)


def test_a_configuration_file_names_datasets_relative_to_itself(tmp_path):
    path = tmp_path / "serve.toml"
    path.write_text('port = 9001\ncors_origins = ["https://viewer.example"]\n'
                    '[datasets.brain]\nsidecar = "packed/brain.refs.json"\n'
                    'transcode = "zstd"\nzarr_formats = [2, 3]\ntoken = "t"\n')
    config = load_config(path, host="0.0.0.0")
    (brain,) = config.datasets
    assert brain == DatasetConfig("brain", str(tmp_path / "packed/brain.refs.json"), "zstd",
                                  (2, 3), "t")
    assert (config.port, config.host, config.cors_origins) == (
        9001, "0.0.0.0", ("https://viewer.example",))


def test_a_configuration_file_with_unknown_options_is_refused(tmp_path):
    path = tmp_path / "serve.json"
    path.write_text('{"prot": 1, "datasets": [{"sidecar": "a.json"}]}')
    with pytest.raises(ServeConfigError, match="unknown serve options prot"):
        load_config(path)


def test_serve_without_sidecars_is_an_error_not_a_traceback(capsys):
    assert main(["serve"]) == 1
    assert "name at least one sidecar" in capsys.readouterr().err


@pytest.mark.parametrize("workers", [1, 2])
def test_the_command_serves_until_sigterm_then_stops_cleanly(files, workers):
    (port,) = free_ports(1)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "refindex.cli", "serve", str(files["standard"].sidecar),
         "--port", str(port), "--workers", str(workers)], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        body = _get_when_up(f"http://127.0.0.1:{port}/standard/.zgroup", process)
        assert b"zarr_format" in body
        for _ in range(8):  # new connections, spread over the workers
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/standard/zstd/0.0") as answer:
                assert answer.status == 200
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
        assert process.returncode == 0, err.decode()
        assert b"/standard/ on http://127.0.0.1:" in out
        assert (b"2 workers" in out) == (workers == 2)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _get_when_up(url: str, process: subprocess.Popen, seconds: float = 20.0) -> bytes:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return answer.read()
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
