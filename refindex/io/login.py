"""Logins to archives: credentials (``~/.netrc``, a bearer token) and the session cookies
they earn, kept per process and host so that an archive sees one login, not one per read.

Credentials go only where they belong: HTTP Basic to a host that ``~/.netrc`` (or the file
the ``NETRC`` environment variable names) lists by name, a bearer token to the host of the
source URL itself. Never to a presigned URL, which authorises itself (and which S3 refuses
when it also carries an ``Authorization`` header). The netrc ``default`` entry is ignored: it
would hand a password to every host a sidecar names.
"""

from __future__ import annotations

import base64
import netrc
import os
import threading
from collections.abc import Mapping
from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlsplit

from refindex.errors import FetchError
from refindex.io.lifetime import is_signed


class Login:
    """Credentials and session cookies of one process (per set of read options)."""

    def __init__(self, bearer_token: str | None, netrc_path: str | None) -> None:
        self._bearer_token = bearer_token
        self._netrc_path = netrc_path
        self._netrc: dict[str, tuple[str, str]] | None = None
        self._lock = threading.Lock()
        # "host:port" -> cookie name -> value. Cookies are kept per host and port, stricter
        # than browsers do: an archive's session cookie is not sent to the storage next to it.
        self._cookies: dict[str, dict[str, str]] = {}

    def headers(self, url: str, source: str) -> dict[str, str]:
        """The ``Authorization`` and ``Cookie`` headers to send with a request to ``url``
        made for source ``source``."""
        if is_signed(url):
            return {}
        headers = {}
        authorization = self._authorization(url, source)
        if authorization is not None:
            headers["Authorization"] = authorization
        with self._lock:
            cookies = self._cookies.get(origin(url))
            if cookies:
                headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
        return headers

    def remember_cookies(self, url: str, set_cookies: list[str]) -> bool:
        """Keep the cookies ``Set-Cookie`` headers of an answer from ``url`` set (dropping
        those they expire); True if any was set."""
        changed = False
        for header in set_cookies:
            cookie = SimpleCookie()
            try:
                cookie.load(header)
            except CookieError:
                continue  # a cookie we cannot parse is one we cannot send back either
            with self._lock:
                jar = self._cookies.setdefault(origin(url), {})
                for name, morsel in cookie.items():
                    if morsel["max-age"] in ("0", "-1") or not morsel.value:
                        jar.pop(name, None)
                    else:
                        jar[name] = morsel.value
                        changed = True
        return changed

    def describe(self, url: str, source: str) -> str:
        """Which credentials requests to ``url`` carry, for error messages (no secrets)."""
        if self._bearer_token and origin(url) == origin(source):
            return "the bearer token (ReadOptions.bearer_token, REFINDEX_BEARER_TOKEN)"
        host = urlsplit(url).hostname or ""
        where = self._netrc_path or "~/.netrc"
        if host in self._credentials():
            return f"the credentials for machine {host} in {where}"
        return f"no credentials (add machine {host} to {where}, or set a bearer token)"

    def clear(self) -> None:
        """Forget the session cookies, and the credentials read (read again when needed)."""
        with self._lock:
            self._cookies.clear()
            self._netrc = None

    def _authorization(self, url: str, source: str) -> str | None:
        if self._bearer_token and origin(url) == origin(source):
            return f"Bearer {self._bearer_token}"
        login = self._credentials().get(urlsplit(url).hostname or "")
        if login is None:
            return None
        token = base64.b64encode(f"{login[0]}:{login[1]}".encode()).decode("ascii")
        return f"Basic {token}"

    def _credentials(self) -> Mapping[str, tuple[str, str]]:
        """Host -> (login, password) from the netrc file, read once."""
        with self._lock:
            if self._netrc is None:
                self._netrc = _read_netrc(self._netrc_path)
            return self._netrc


def _read_netrc(path: str | None) -> dict[str, tuple[str, str]]:
    try:
        parsed = netrc.netrc(path)
    except FileNotFoundError:
        return {}
    except (netrc.NetrcParseError, OSError) as error:
        raise FetchError(f"{path or '~/.netrc'}: cannot read credentials: {error}") from error
    return {
        host: (login or "", password or "")
        for host, (login, _account, password) in parsed.hosts.items()
    }


def netrc_path() -> str | None:
    """The netrc file credentials come from: ``NETRC``, else None for ``~/.netrc``."""
    return os.environ.get("NETRC") or None


def origin(url: str) -> str:
    """``host:port`` of ``url`` (the port made explicit), what cookies are kept by."""
    parts = urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    return f"{(parts.hostname or '').lower()}:{parts.port or default}"
