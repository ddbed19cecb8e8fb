"""An archive on 127.0.0.1 (aiohttp) that hands out data as NASA Earthdata or DANDI do: a
login, a session cookie, then a redirect of every file to a short-lived presigned URL of the
S3 test server. Its fixtures are made available to every test by tests/conftest.py.

``/data/<bucket>/<key>`` without the session cookie answers 302 to ``/login?next=...``;
``/login`` wants HTTP Basic (``username``/``password``) or ``Authorization: Bearer <token>``,
sets the cookie and answers 302 back; with the cookie, ``/data/...`` answers 302 to a URL of
``s3://<bucket>/<key>`` presigned for ``lifetime`` seconds. ``/moved`` answers 302 to
``moved_to``. It counts logins and redirects.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
from aiohttp import web

from refindex.demo.embedded_s3 import EmbeddedS3
from tests.http_server import serve_in_thread

_COOKIE = "archive_session"


@dataclass
class ArchiveServer:
    """The archive's settings and counters (see the module docstring)."""

    s3: EmbeddedS3
    username: str = "reader"
    password: str = "open-sesame"
    token: str = "archive-token-42"
    lifetime: int = 10
    """Seconds the presigned URLs it redirects to are valid for."""
    moved_to: str = ""
    logins: int = 0
    """Successful logins (cookies handed out)."""
    refused_logins: int = 0
    redirects: int = 0
    """Redirects of ``/data/...`` to a presigned URL."""
    login_redirects: int = 0
    """Redirects of ``/data/...`` to ``/login`` (no valid session cookie)."""
    sessions: set[str] = field(default_factory=set)
    port: int = 0
    presigner: object = None
    """The botocore S3 client that presigns (default: the server's own); the benchmark's
    points at the latency-emulating proxy in front of the S3 server."""

    def url(self, bucket: str, key: str) -> str:
        """The archive's URL of ``s3://bucket/key``."""
        return f"http://127.0.0.1:{self.port}/data/{bucket}/{key}"

    def reset(self) -> None:
        """Forget sessions and counters; back to the default settings."""
        self.username, self.password, self.token = "reader", "open-sesame", "archive-token-42"
        self.lifetime, self.moved_to = 10, ""
        self.reset_counters()

    def reset_counters(self) -> None:
        """Forget sessions and counters, keeping the settings."""
        self.logins = self.refused_logins = self.redirects = self.login_redirects = 0
        self.sessions.clear()

    async def data(self, request: web.Request) -> web.Response:
        if request.cookies.get(_COOKIE) not in self.sessions:
            self.login_redirects += 1
            raise web.HTTPFound(f"/login?next={quote(request.path_qs)}")
        self.redirects += 1
        bucket, key = request.match_info["bucket"], request.match_info["key"]
        raise web.HTTPFound(self._presign(bucket, key))

    async def login(self, request: web.Request) -> web.Response:
        if not self._authorised(request.headers.get("Authorization", "")):
            self.refused_logins += 1
            raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Basic realm="archive"'})
        self.logins += 1
        session = secrets.token_hex(8)
        self.sessions.add(session)
        response = web.HTTPFound(request.query.get("next", "/"))
        response.set_cookie(_COOKIE, session, httponly=True)
        raise response

    async def moved(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(self.moved_to)

    def _authorised(self, authorization: str) -> bool:
        basic = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return authorization in (f"Basic {basic}", f"Bearer {self.token}")

    def app(self) -> web.Application:
        """The archive as an aiohttp application, to serve with ``serve_in_thread``."""
        app = web.Application()
        app.router.add_get("/data/{bucket}/{key:.+}", self.data)
        app.router.add_get("/login", self.login)
        app.router.add_get("/moved", self.moved)
        return app

    def _presign(self, bucket: str, key: str) -> str:
        return (self.presigner or self.s3.client()).generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=self.lifetime
        )


@pytest.fixture(scope="session")
def _archive_server_process(s3_server: EmbeddedS3) -> Iterator[ArchiveServer]:
    server = ArchiveServer(s3_server)
    with serve_in_thread(server.app(), "test-archive") as port:
        server.port = port
        yield server


@pytest.fixture
def archive_server(_archive_server_process: ArchiveServer) -> Iterator[ArchiveServer]:
    """The archive, with fresh sessions and counters for this test."""
    _archive_server_process.reset()
    yield _archive_server_process
    _archive_server_process.reset()


@pytest.fixture
def archive_netrc(
    archive_server: ArchiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A netrc file with the archive's credentials, named by ``NETRC`` for this test."""
    path = tmp_path / "netrc"
    path.write_text(
        f"machine 127.0.0.1 login {archive_server.username} password {archive_server.password}\n"
    )
    path.chmod(0o600)
    monkeypatch.setenv("NETRC", str(path))
    return path
