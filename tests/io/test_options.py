"""ReadOptions: defaults, environment, validation."""

import pickle

import pytest

from refindex.io import ReadOptions


def test_defaults_are_valid_and_documented_values():
    options = ReadOptions()
    assert options.endpoint_url is None
    assert options.anon is False
    assert options.block_size > 0 and options.block_size % 4096 == 0
    assert options.max_concurrency > 0 and options.retries >= 0


def test_from_env_reads_refindex_variables():
    environ = {
        "REFINDEX_MAX_CONCURRENCY": "7",
        "REFINDEX_TIMEOUT": "2.5",
        "REFINDEX_ANON": "true",
        "REFINDEX_ENDPOINT_URL": "http://127.0.0.1:9000",
        "UNRELATED": "x",
    }
    options = ReadOptions.from_env(environ)
    assert options.max_concurrency == 7
    assert options.timeout == 2.5
    assert options.anon is True
    assert options.endpoint_url == "http://127.0.0.1:9000"


def test_from_env_overrides_win():
    options = ReadOptions.from_env({"REFINDEX_RETRIES": "9"}, retries=1)
    assert options.retries == 1


def test_from_env_names_the_bad_variable():
    with pytest.raises(ValueError, match="REFINDEX_RETRIES"):
        ReadOptions.from_env({"REFINDEX_RETRIES": "many"})


def test_replace_validates():
    with pytest.raises(ValueError, match="block_size"):
        ReadOptions().replace(block_size=0)


def test_options_are_frozen_and_picklable():
    options = ReadOptions(retries=2)
    with pytest.raises(AttributeError):
        options.retries = 3  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(options)) == options
