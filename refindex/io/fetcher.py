"""HttpFetcher: exact, validated, retried range GETs and HEADs over aiohttp.

Every answer is checked before its bytes are returned: the status, the ``Content-Range``
(the server must send exactly the bytes asked), the object's size and ETag when the caller
knows them, and the body's length. A short or mismatched answer is never returned.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp
from yarl import URL

from refindex.errors import FetchError, SourceChangedError, SourceNotFoundError
from refindex.io.options import ReadOptions
from refindex.io.requests import ObjectInfo, RangeRequest
from refindex.io.resolver import UrlResolver
from refindex.io.retry import (
    RetryableError,
    backoff_delay,
    is_retryable_status,
    parse_retry_after,
)
from refindex.io.sessions import LoopResourcePool
from refindex.io.stats import ReadStats

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)")
_ERROR_BODY_BYTES = 300  # of an error response, quoted in the message (S3 error codes)

# Raised by aiohttp for broken connections, truncated bodies and timeouts: worth a retry.
_TRANSIENT = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError)

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

    async def get(self, request: RangeRequest, scheme: str) -> bytes:
        """Exactly the bytes of ``request``, or an error naming the URL and range."""
        return await self._with_retries(
            request.url, request.where, scheme, lambda: self._get_once(request)
        )

    async def head(self, url: str, scheme: str) -> ObjectInfo:
        """Size, ETag and Last-Modified of ``url``."""
        return await self._with_retries(url, url, scheme, lambda: self._head_once(url))

    async def _with_retries(
        self, url: str, where: str, scheme: str, attempt: Callable[[], Awaitable[_T]]
    ) -> _T:
        retries = 0
        refreshed = False
        while True:
            try:
                async with self._resources.get().limit:
                    return await attempt()
            except _Forbidden as error:
                # An expired presigned URL or rotated credentials: re-resolve once.
                if refreshed or not self._resolver.can_refresh(url):
                    raise FetchError(f"{where}: {error}") from None
                refreshed = True
                self._resolver.refresh(url)
                self._stats.add(scheme, retries=1)
            except RetryableError as error:
                if retries >= self._options.retries:
                    raise FetchError(
                        f"{where}: {error.reason} (gave up after {retries + 1} attempts)"
                    ) from error
                self._stats.add(scheme, retries=1)
                await asyncio.sleep(backoff_delay(retries, self._options, error.retry_after))
                retries += 1

    async def _get_once(self, request: RangeRequest) -> bytes:
        session = self._resources.get().session
        headers = {}
        if request.length != -1:
            headers["Range"] = f"bytes={request.offset}-{request.offset + request.length - 1}"
        if_match = _if_match(request.etag)
        if if_match is not None:
            headers["If-Match"] = if_match
        url = URL(self._resolver.resolve(request.url, "GET"), encoded=True)
        try:
            async with session.get(url, headers=headers) as response:
                await _check_status(response, request.url, request)
                _check_identity(response, request)
                expected = _expected_length(response, request)
                body = await response.read()
        except _TRANSIENT as error:
            raise RetryableError(_describe(error)) from error
        except aiohttp.ClientError as error:
            raise FetchError(f"{request.where}: {_describe(error)}") from error
        if expected is None:
            _check_size(request, len(body))
        elif len(body) != expected:
            raise RetryableError(f"body has {len(body)} bytes, expected {expected}")
        return body

    async def _head_once(self, url: str) -> ObjectInfo:
        session = self._resources.get().session
        target = URL(self._resolver.resolve(url, "HEAD"), encoded=True)
        try:
            async with session.head(target, allow_redirects=True) as response:
                await _check_status(response, url, None)
                size = response.content_length
                etag = response.headers.get("ETag")
                modified = response.headers.get("Last-Modified")
        except _TRANSIENT as error:
            raise RetryableError(_describe(error)) from error
        except aiohttp.ClientError as error:
            raise FetchError(f"{url}: {_describe(error)}") from error
        if size is None:
            raise FetchError(f"{url}: HEAD answered without Content-Length; size unknown")
        return ObjectInfo(url=url, size=size, etag=etag, last_modified=modified)


class _Forbidden(Exception):
    """HTTP 403: access denied, or a presigned URL that has expired."""


async def _check_status(
    response: aiohttp.ClientResponse, url: str, request: RangeRequest | None
) -> None:
    """Raise the error a non-success status means; return for 200 and 206."""
    status = response.status
    if status in (200, 206):
        return
    where = url if request is None else request.where
    if status in (404, 410):
        raise SourceNotFoundError(f"{url}: not found (HTTP {status})")
    if status == 412:
        expected = request.etag if request is not None else None
        raise SourceChangedError(f"{url}: ETag is no longer {expected}; the object has changed")
    if status == 416 and request is not None:
        _raise_unsatisfiable(response, request)
    detail = await _error_detail(response)
    if status == 403:
        raise _Forbidden(f"access denied (HTTP 403){detail}")
    if is_retryable_status(status):
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        raise RetryableError(f"HTTP {status}{detail}", retry_after=retry_after)
    raise FetchError(f"{where}: HTTP {status} {response.reason or ''}{detail}".rstrip())


def _raise_unsatisfiable(response: aiohttp.ClientResponse, request: RangeRequest) -> None:
    match = _UNSATISFIED_RANGE.match(response.headers.get("Content-Range", ""))
    size = int(match.group(1)) if match else None
    _check_size(request, size)
    of_size = f" of {size} bytes" if size is not None else ""
    raise FetchError(f"{request.where}: range runs past the end of the object{of_size}")


def _check_identity(response: aiohttp.ClientResponse, request: RangeRequest) -> None:
    """The response must come from the object the caller knows (ETag) and not be encoded."""
    etag = response.headers.get("ETag")
    if request.etag is not None and etag is not None and _bare(etag) != _bare(request.etag):
        raise SourceChangedError(
            f"{request.url}: ETag is {etag}, expected {request.etag}; the object has changed"
        )
    encoding = response.headers.get("Content-Encoding", "identity").lower()
    if encoding not in ("identity", ""):
        raise FetchError(f"{request.where}: server sent Content-Encoding {encoding!r}")


def _expected_length(response: aiohttp.ClientResponse, request: RangeRequest) -> int | None:
    """Body length the response must have (None: unknown, chunked); raises if it is not the
    range asked for."""
    if request.length == -1:
        if response.status != 200:
            raise FetchError(f"{request.where}: HTTP {response.status} for a whole-object read")
        size = response.content_length
        _check_size(request, size)
        return size
    end = request.offset + request.length
    if response.status == 206:
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if match is None:
            raise FetchError(f"{request.where}: HTTP 206 without a valid Content-Range")
        first, last, total = int(match.group(1)), int(match.group(2)), match.group(3)
        size = None if total == "*" else int(total)
        _check_size(request, size)
        if (first, last + 1) != (request.offset, end):
            if size is not None and end > size:
                raise FetchError(
                    f"{request.where}: range runs past the end of the object of {size} bytes"
                )
            raise FetchError(f"{request.where}: server sent bytes [{first}, {last + 1})")
        return request.length
    # HTTP 200 to a Range request: the server sent the whole object. Only acceptable when
    # the whole object is exactly the range asked for.
    size = response.content_length
    _check_size(request, size)
    if size is not None and end > size:
        raise FetchError(f"{request.where}: range runs past the end of the object of {size} bytes")
    if request.offset == 0 and size == request.length:
        return request.length
    raise FetchError(f"{request.where}: server ignored the Range header (HTTP 200)")


def _check_size(request: RangeRequest, size: int | None) -> None:
    if request.size is not None and size is not None and size != request.size:
        raise SourceChangedError(
            f"{request.url}: size is {size} bytes, expected {request.size}; the object has changed"
        )


async def _error_detail(response: aiohttp.ClientResponse) -> str:
    """A short quote of an error body (S3 explains itself there), or nothing."""
    try:
        body = await response.content.read(_ERROR_BODY_BYTES)
    except (*_TRANSIENT, RuntimeError):
        return ""
    text = " ".join(body.decode("utf-8", "replace").split())
    return f": {text}" if text else ""


def _bare(etag: str) -> str:
    """An ETag without weak prefix and quotes, for comparing ETags from different sources."""
    return etag.removeprefix("W/").strip('"')


def _if_match(etag: str | None) -> str | None:
    """The If-Match header for ``etag``; none for weak ETags (If-Match compares strongly)."""
    if etag is None or etag.startswith("W/"):
        return None
    return f'"{_bare(etag)}"'


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "timed out (no bytes for stall_timeout, or over timeout)"
    return f"{type(error).__name__}: {error}"
