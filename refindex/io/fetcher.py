"""HttpFetcher: exact, validated, retried range GETs and HEADs over aiohttp.

Requests go through the one attempt loop (``refindex.io.attempts``, which uploads use too):
each attempt holds a place under the host's in-flight limit and the engine's, and is retried
as ``ReadOptions.retry`` says on 5xx, 429, resets, truncated and stalled bodies, within a
deadline per read. Every answer is checked (``validation``) before its bytes are returned: a
short or mismatched answer is never returned, and a failure names the URL, the range, the
last cause and the attempts.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import aiohttp
from yarl import URL

from refindex.errors import FetchError, SourceNotFoundError
from refindex.io import lifetime
from refindex.io.attempts import AttemptEvents, AttemptLoop, Send
from refindex.io.options import ReadOptions
from refindex.io.requests import ObjectInfo, RangeRequest
from refindex.io.resolver import ResolvedUrl, UrlResolver
from refindex.io.retry import RetryableError, describe_error
from refindex.io.s3 import forget_credentials
from refindex.io.sessions import LoopResourcePool
from refindex.io.stats import ReadStats
from refindex.io.validation import (
    TRANSIENT_ERRORS,
    AccessDenied,
    check_identity,
    check_size,
    check_status,
    conditional_headers,
    error_detail,
    expected_length,
)

_T = TypeVar("_T")


class HttpFetcher:
    """Range GETs and HEADs of ``http(s)://`` and ``s3://`` URLs, with retries and checks."""

    def __init__(
        self,
        options: ReadOptions,
        stats: ReadStats,
        resolver: UrlResolver,
        resources: LoopResourcePool,
    ) -> None:
        self._options = options
        self._stats = stats
        self._resolver = resolver
        self._resources = resources
        self._attempts = AttemptLoop(options.retry, options.max_per_host)

    async def get(self, request: RangeRequest, scheme: str) -> bytes:
        """Exactly the bytes of ``request``, or an error naming the URL and range."""
        return await self._with_retries(
            request.url,
            request.where,
            scheme,
            "GET",
            lambda target, headers: self._get_once(request, target, headers),
        )

    async def get_with_identity(self, request: RangeRequest,
                                scheme: str) -> tuple[bytes, ObjectInfo]:
        """``get``, and the object's size, ETag and Last-Modified as that answer states them:
        a range GET that also does a HEAD's work."""
        seen: list[ObjectInfo] = []
        body = await self._with_retries(
            request.url,
            request.where,
            scheme,
            "GET",
            lambda target, headers: self._get_once(request, target, headers, seen),
        )
        return body, seen[-1]

    async def head(self, url: str, scheme: str) -> ObjectInfo:
        """Size, ETag and Last-Modified of ``url``: one HEAD where it can be had.

        S3 objects get a presigned HEAD. HTTP(S) sources get a HEAD of the URL they resolve
        to, unless that URL is presigned (archives hand out URLs signed for GET only) or the
        server refuses HEAD (405, 501) or answers it without a size: then a one-byte GET."""
        if scheme == "s3":
            return await self._with_retries(
                url, url, scheme, "HEAD",
                lambda target, headers: self._head_once(url, target, headers))
        return await self._with_retries(
            url, url, scheme, "GET",
            lambda target, headers: self._inspect_once(url, target, headers))

    async def get_signed(self, url: str, sign: Callable[[], str]) -> bytes:
        """The body of a GET of the URL ``sign()`` makes (signed anew for each attempt), for
        requests that are not reads of a source: S3 listings. ``url`` names it in errors."""
        return await self._with_retries(
            url, url, "s3", "GET",
            lambda target, headers: self._document_once(url, target, headers), sign)

    async def _document_once(self, url: str, target: URL, headers: Mapping[str, str]) -> bytes:
        session = self._resources.get().session
        try:
            response = await self._send(session.get(target, headers=dict(headers),
                                                    allow_redirects=False))
            async with response:
                _refuse_redirect(response)
                if response.status in (404, 410):
                    raise await _not_found(response, url)
                await check_status(response, url, None)
                return await _read_body(response, response.content_length,
                                        self._options.stall_timeout)
        except TRANSIENT_ERRORS as error:
            raise RetryableError(describe_error(error)) from error
        except aiohttp.ClientError as error:
            raise FetchError(f"{url}: {describe_error(error)}") from error

    async def _with_retries(
        self,
        url: str,
        where: str,
        scheme: str,
        method: str,
        attempt: Send[_T],
        sign: Callable[[], str] | None = None,
    ) -> _T:
        """``attempt`` through the one attempt loop (``refindex.io.attempts``): resolved by
        the resolver (refreshed once on a 401/403), or signed by ``sign()`` for each attempt
        (the credentials read anew once on a 401/403)."""
        if sign is None:
            async def resolve() -> ResolvedUrl:
                return await self._resolver.resolve(url, method)

            def refresh(stale: ResolvedUrl | None) -> bool:
                if not self._resolver.can_refresh(url):
                    return False
                self._resolver.refresh(url, stale)
                return True
        else:
            async def resolve() -> ResolvedUrl:
                return ResolvedUrl(sign())

            def refresh(stale: ResolvedUrl | None) -> bool:
                if self._options.anon:  # unsigned: nothing to read anew
                    return False
                forget_credentials()
                return True

        return await self._attempts.run(
            where, resolve, attempt, refresh=refresh, limit=self._resources.get().limit,
            events=_Counted(self._stats, scheme))

    async def _get_once(
        self, request: RangeRequest, target: URL, resolved_headers: Mapping[str, str],
        seen: list[ObjectInfo] | None = None,
    ) -> bytes:
        session = self._resources.get().session
        headers = {**resolved_headers, **conditional_headers(request)}
        try:
            # Redirects are the resolver's to follow (it checks the source policy and caches
            # them); one met here means the resolved URL went stale.
            response = await self._send(
                session.get(target, headers=headers, allow_redirects=False))
            async with response:
                _refuse_redirect(response)
                await check_status(response, request.url, request)
                check_identity(response, request)
                expected = expected_length(response, request)
                if seen is not None:
                    seen.append(_identity(response, request.url))
                body = await _read_body(response, expected, self._options.stall_timeout)
        except TRANSIENT_ERRORS as error:
            raise RetryableError(describe_error(error)) from error
        except aiohttp.ClientError as error:
            raise FetchError(f"{request.where}: {describe_error(error)}") from error
        if expected is None:
            check_size(request, len(body))
        elif len(body) != expected:
            raise RetryableError(f"body has {len(body)} bytes, expected {expected}")
        return body

    async def _inspect_once(
        self, url: str, target: URL, resolved_headers: Mapping[str, str]
    ) -> ObjectInfo:
        """What an HTTP(S) source is: a HEAD, else the answer to ``Range: bytes=0-0``."""
        if not lifetime.is_signed(str(target)):
            info = await self._head_once(url, target, resolved_headers, may_refuse=True)
            if info is not None:
                return info
        return await self._probe_once(url, target, resolved_headers)

    async def _head_once(
        self, url: str, target: URL, resolved_headers: Mapping[str, str], may_refuse: bool = False
    ) -> ObjectInfo | None:
        """The HEAD's answer; None when ``may_refuse`` and the server refused HEAD or gave
        no size."""
        session = self._resources.get().session
        headers = dict(resolved_headers)
        try:
            response = await self._send(
                session.head(target, headers=headers, allow_redirects=False)
            )
            async with response:
                _refuse_redirect(response)
                if may_refuse and response.status in _HEAD_REFUSED:
                    return None
                await check_status(response, url, None)
                size = response.content_length
                etag = response.headers.get("ETag")
                modified = response.headers.get("Last-Modified")
        except TRANSIENT_ERRORS as error:
            raise RetryableError(describe_error(error)) from error
        except aiohttp.ClientError as error:
            raise FetchError(f"{url}: {describe_error(error)}") from error
        if size is None:
            if may_refuse:
                return None
            raise FetchError(f"{url}: HEAD answered without Content-Length; size unknown")
        return ObjectInfo(url=url, size=size, etag=etag, last_modified=modified)

    async def _probe_once(
        self, url: str, target: URL, resolved_headers: Mapping[str, str]
    ) -> ObjectInfo:
        """Size, ETag and Last-Modified from the answer to ``Range: bytes=0-0``."""
        session = self._resources.get().session
        headers = {**resolved_headers, "Range": "bytes=0-0"}
        try:
            response = await self._send(
                session.get(target, headers=headers, allow_redirects=False))
            async with response:
                _refuse_redirect(response)
                await check_status(response, url, None)
                size = _total_size(response)
                etag = response.headers.get("ETag")
                modified = response.headers.get("Last-Modified")
                await response.read()
        except TRANSIENT_ERRORS as error:
            raise RetryableError(describe_error(error)) from error
        except aiohttp.ClientError as error:
            raise FetchError(f"{url}: {describe_error(error)}") from error
        if size is None:
            raise FetchError(f"{url}: the server gave no size (no Content-Range or "
                             "Content-Length)")
        return ObjectInfo(url=url, size=size, etag=etag, last_modified=modified)

    async def _send(self, request: Awaitable[aiohttp.ClientResponse]) -> aiohttp.ClientResponse:
        """The response to ``request`` once its headers are in, within ``options.timeout``."""
        try:
            async with asyncio.timeout(self._options.timeout) as timer:
                return await request
        except TimeoutError as error:
            if not timer.expired():  # aiohttp's own: connecting, or no byte for stall_timeout
                raise RetryableError(describe_error(error)) from error
            raise RetryableError(
                f"timed out: no response headers within {self._options.timeout:g} s"
            ) from None


class _Counted(AttemptEvents):
    """The attempt loop's events, counted in the engine's stats of one scheme."""

    def __init__(self, stats: ReadStats, scheme: str) -> None:
        self._stats, self._scheme = stats, scheme

    def retrying(self, backoff: float) -> None:
        self._stats.add(self._scheme, retries=1, backoff_seconds=backoff)

    def throttled(self) -> None:
        self._stats.add(self._scheme, throttled=1)

    def host_limit(self, host: str, limit: int) -> None:
        self._stats.note_host_limit(host, limit)


async def _read_body(
    response: aiohttp.ClientResponse, expected: int | None, stall_timeout: float
) -> bytes:
    """The body, read piece by piece: a stream that delivers no byte for ``stall_timeout``
    seconds is abandoned (retryable), one that keeps delivering is never cut off."""
    loop = asyncio.get_running_loop()
    pieces: list[bytes] = []
    received = 0
    try:
        async with asyncio.timeout(stall_timeout) as timer:
            while piece := await response.content.readany():
                received += len(piece)
                if expected is not None and received > expected:
                    raise RetryableError(f"body is longer than the {expected} bytes announced")
                pieces.append(piece)
                timer.reschedule(loop.time() + stall_timeout)
    except TimeoutError:
        of = f" of {expected}" if expected is not None else ""
        raise RetryableError(
            f"timed out: stalled stream, no bytes for {stall_timeout:g} s "
            f"after {received}{of} bytes"
        ) from None
    return b"".join(pieces)


async def _not_found(response: aiohttp.ClientResponse, url: str) -> SourceNotFoundError:
    """A 404 naming S3's error code: for a listing, ``NoSuchBucket`` says what is missing."""
    code, _ = await error_detail(response)
    name = f" {code}" if code else ""
    return SourceNotFoundError(f"{url}: not found (HTTP {response.status}{name})")


def _refuse_redirect(response: aiohttp.ClientResponse) -> None:
    if 300 <= response.status < 400:
        raise AccessDenied(f"redirected (HTTP {response.status}) past the resolved URL")


def _total_size(response: aiohttp.ClientResponse) -> int | None:
    """The object's size: from ``Content-Range: bytes 0-0/<size>`` (206), or the body's
    length when the server ignored the range (200)."""
    if response.status == 206:
        match = _CONTENT_RANGE_TOTAL.match(response.headers.get("Content-Range", ""))
        return int(match.group(1)) if match else None
    return response.content_length


def _identity(response: aiohttp.ClientResponse, url: str) -> ObjectInfo:
    """The object an answer to a GET comes from: its size (Content-Range's total, or a
    whole body's length), ETag and Last-Modified."""
    size = _total_size(response)
    if size is None:
        raise FetchError(f"{url}: the server gave no size (no Content-Range or Content-Length)")
    return ObjectInfo(url=url, size=size, etag=response.headers.get("ETag"),
                      last_modified=response.headers.get("Last-Modified"))


_CONTENT_RANGE_TOTAL = re.compile(r"bytes\s+\d+-\d+/(\d+)")
_HEAD_REFUSED = frozenset({405, 501})  # Method Not Allowed, Not Implemented
