"""Follow an HTTP(S) source's redirects and login pages to the URL that serves its bytes.

One small ranged GET per hop (``Range: bytes=0-0``), redirects followed by hand so that each
target passes the source policy first and each hop gets its own credentials and cookies. A
redirect to a presigned URL ends the walk without a request to that URL.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from urllib.parse import urljoin

import aiohttp
from yarl import URL

from refindex.errors import FetchError
from refindex.io import lifetime
from refindex.io.login import Login
from refindex.io.options import ReadOptions
from refindex.io.policy import SourcePolicy
from refindex.io.retry import RetryableError
from refindex.io.validation import TRANSIENT_ERRORS, AccessDenied, check_status

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_SHORT_BODY = 64 * 1024  # bytes of a hop's body read to keep its connection


async def follow_redirects(
    source: str,
    session: aiohttp.ClientSession,
    login: Login,
    policy: SourcePolicy,
    options: ReadOptions,
    count: Callable[..., None],
) -> tuple[str, dict[str, str], float | None]:
    """``(url, headers, expires)``: where ``source``'s bytes are served, the headers to send
    there, and when that stops working (seconds since the epoch; None: never).

    ``count(redirects=1)`` and ``count(logins=1)`` report what happened. A login is an answer
    to a request carrying credentials that set a session cookie.
    """
    current, redirect_expiries = source, []
    for _ in range(options.max_redirects + 1):
        headers = {"Range": "bytes=0-0", **login.headers(current, source)}
        async with _send(session, current, headers, options) as response:
            if login.remember_cookies(current, response.headers.getall("Set-Cookie", [])) and (
                "Authorization" in headers
            ):
                count(logins=1)
            if response.status not in _REDIRECTS:
                await _check_final(response, source, current, login)
                break
            target = _location(response, source, current)
            policy.check_redirect(source, target)
            count(redirects=1)
            redirect_expiries.append(lifetime.header_expiry(response.headers, lifetime.now()))
            current = target
            if lifetime.is_signed(target):
                # A presigned URL is where the bytes are: probing it too would cost every
                # source one more round trip before its first read. Should it redirect or
                # refuse after all, the read fails over to resolving anew.
                break
    else:
        raise FetchError(f"{source}: more than {options.max_redirects} redirects (max_redirects)")
    return current, login.headers(current, source), _expiry(
        source, current, redirect_expiries, options
    )


def _send(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], options: ReadOptions
) -> _Hop:
    return _Hop(session.get(URL(url, encoded=True), headers=headers, allow_redirects=False),
                options.timeout)


class _Hop:
    """``async with``: the response of one hop, its errors turned into refindex's."""

    def __init__(self, request, timeout: float) -> None:
        self._request, self._timeout = request, timeout
        self._response: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> aiohttp.ClientResponse:
        try:
            async with asyncio.timeout(self._timeout):
                self._response = await self._request
        except TRANSIENT_ERRORS as error:
            raise RetryableError(f"resolving: {type(error).__name__}: {error}") from error
        except aiohttp.ClientError as error:
            raise FetchError(f"resolving: {type(error).__name__}: {error}") from error
        return self._response

    async def __aexit__(self, *exc_info: object) -> None:
        response = self._response
        if response is None:
            return
        # Only the headers matter. A short body (the one byte, a redirect's note) is read so
        # that the connection is reused; a server that ignored the Range is cut off.
        length = response.content_length
        if length is not None and length <= _SHORT_BODY:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, RuntimeError):
                await response.read()
            response.release()
        else:
            response.close()


async def _check_final(
    response: aiohttp.ClientResponse, source: str, url: str, login: Login
) -> None:
    """Raise what a final answer other than the bytes means (denied, missing, retryable)."""
    if response.status == 416:  # an empty object has no byte 0: still the right place
        return
    where = source if url == source else f"{source} (at {_shown(url)})"
    try:
        await check_status(response, where, None)
    except AccessDenied as error:
        raise FetchError(
            f"{where}: {error}; the request carried {login.describe(url, source)}"
        ) from None


def _location(response: aiohttp.ClientResponse, source: str, url: str) -> str:
    location = response.headers.get("Location")
    if not location:
        raise FetchError(f"{source}: HTTP {response.status} from {_shown(url)} without Location")
    return urljoin(url, location)


def _expiry(
    source: str, url: str, redirect_expiries: list[float | None], options: ReadOptions
) -> float | None:
    """When the resolved ``url`` must be resolved anew: its signature's expiry, else what
    the redirects said about their lifetime, else ``resolve_ttl`` after now. A source that
    was not redirected never expires (a 401/403 still makes it resolve anew)."""
    at = lifetime.now()
    signed = lifetime.url_expiry(url, at)
    if signed is not None:
        return signed
    if url == source:
        return None
    # The object's own Cache-Control (on the final answer) is about its bytes, not about how
    # long the redirect stands, so only the redirects' answers count here.
    stated = [expiry for expiry in redirect_expiries if expiry is not None]
    return min(stated) if stated else at + options.resolve_ttl


def _shown(url: str) -> str:
    """``url`` without its query, which may hold a signature."""
    return url.split("?", 1)[0]
