"""Credentials and session cookies: sent only where they belong."""

from __future__ import annotations

import base64

import pytest

from refindex.errors import FetchError
from refindex.io.login import Login

SOURCE = "https://archive.example/data/granule.h5"
SIGNED = "https://bucket.s3.amazonaws.com/granule.h5?X-Amz-Signature=abc&X-Amz-Expires=60"


@pytest.fixture
def netrc_file(tmp_path):
    path = tmp_path / "netrc"
    path.write_text("machine archive.example login reader password secret\n"
                    "default login anyone password everywhere\n")
    path.chmod(0o600)
    return str(path)


def _basic(login: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


def test_netrc_credentials_go_to_their_host_only(netrc_file):
    login = Login(None, netrc_file)
    assert login.headers(SOURCE, SOURCE) == {"Authorization": _basic("reader", "secret")}
    assert login.headers("https://elsewhere.example/x", SOURCE) == {}  # no 'default' entry


def test_bearer_token_goes_to_the_source_host_only():
    login = Login("t0ken", None)
    assert login.headers(SOURCE + "?page=2", SOURCE) == {"Authorization": "Bearer t0ken"}
    assert login.headers("https://cdn.example/x", SOURCE) == {}


def test_presigned_urls_get_no_credentials_or_cookies(netrc_file):
    login = Login("t0ken", netrc_file)
    login.remember_cookies(SIGNED, ["session=abc"])
    assert login.headers(SIGNED, SIGNED) == {}


def test_cookies_are_kept_per_host_and_port():
    login = Login(None, None)
    assert login.remember_cookies(SOURCE, ["session=abc; Path=/; HttpOnly", "theme=dark"])
    assert login.headers("https://archive.example/other", SOURCE)["Cookie"] == (
        "session=abc; theme=dark")
    assert "Cookie" not in login.headers("https://archive.example:8443/x", SOURCE)
    login.remember_cookies(SOURCE, ["session=; Max-Age=0"])
    assert login.headers(SOURCE, SOURCE)["Cookie"] == "theme=dark"


def test_a_broken_netrc_file_is_named(tmp_path):
    path = tmp_path / "netrc"
    path.write_text("machine archive.example\nbogus token\n")
    with pytest.raises(FetchError, match=str(path)):
        Login(None, str(path)).headers(SOURCE, SOURCE)
