"""Check an HTTP answer against what the caller knows before any of its bytes are used.

The status, the ``Content-Range`` (exactly the bytes asked), the object's size, and its
ETag or, lacking one, its Last-Modified; the conditional headers that let the server refuse
a changed object (``If-Match``, ``If-Unmodified-Since``) are made here too.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp

from refindex.errors import FetchError, SourceChangedError, SourceNotFoundError
from refindex.io.requests import RangeRequest
from refindex.io.retry import (
    RetryableError,
    is_retryable_status,
    is_throttle_status,
    parse_retry_after,
)

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)")
_S3_ERROR_CODE = re.compile(r"<Code>\s*([A-Za-z]+)\s*</Code>")
_ERROR_BODY_BYTES = 2048  # of an error response, read to find S3's error code
_ERROR_QUOTE_CHARS = 300  # of an error response, quoted in the message

# Raised by aiohttp for broken connections, truncated bodies and timeouts: worth a retry.
TRANSIENT_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError)


class AccessDenied(Exception):
    """HTTP 401 or 403: access denied, or a presigned URL or token that has expired."""


def conditional_headers(request: RangeRequest) -> dict[str, str]:
    """``Range`` and the conditions that make the server refuse a changed object."""
    headers = {}
    if request.length != -1:
        headers["Range"] = f"bytes={request.offset}-{request.offset + request.length - 1}"
    if_match = _if_match(request.etag)
    if if_match is not None:
        headers["If-Match"] = if_match
    elif http_date(request.last_modified) is not None:
        headers["If-Unmodified-Since"] = request.last_modified  # type: ignore[assignment]
    return headers


async def check_status(
    response: aiohttp.ClientResponse, url: str, request: RangeRequest | None
) -> None:
    """Raise the error a non-success status means; return for 200 and 206."""
    status = response.status
    if status in (200, 206):
        return
    where = url if request is None else request.where
    if status in (404, 410):
        raise SourceNotFoundError(f"{url}: not found (HTTP {status})")
    if status == 412 and request is not None:
        raise SourceChangedError(f"{url}: {_precondition(request)}; the object has changed")
    if status == 416 and request is not None:
        _raise_unsatisfiable(response, request)
    code, detail = await error_detail(response)
    if status in (401, 403):
        raise AccessDenied(f"access denied (HTTP {status}){detail}")
    if is_retryable_status(status):
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        name = f" {code}" if code else ""
        wait = f" (Retry-After {retry_after:g} s)" if retry_after is not None else ""
        throttled = is_throttle_status(status) or code == "SlowDown"
        raise RetryableError(
            f"HTTP {status}{name}{wait}{detail}", retry_after=retry_after, throttled=throttled
        )
    raise FetchError(f"{where}: HTTP {status} {response.reason or ''}{detail}".rstrip())


def check_identity(response: aiohttp.ClientResponse, request: RangeRequest) -> None:
    """The response must come from the object the caller knows and not be encoded."""
    etag = response.headers.get("ETag")
    if request.etag is not None:
        if etag is not None and not same_etag(etag, request.etag):
            raise SourceChangedError(
                f"{request.url}: ETag is {etag}, expected {request.etag}; the object has changed"
            )
    else:
        # Without an ETag, Last-Modified is the identity: a different one (later or earlier)
        # means the object was replaced.
        expected = http_date(request.last_modified)
        modified = response.headers.get("Last-Modified")
        actual = http_date(modified)
        if expected is not None and actual is not None and actual != expected:
            raise SourceChangedError(
                f"{request.url}: Last-Modified is {modified}, expected "
                f"{request.last_modified}; the object has changed"
            )
    encoding = response.headers.get("Content-Encoding", "identity").lower()
    if encoding not in ("identity", ""):
        raise FetchError(f"{request.where}: server sent Content-Encoding {encoding!r}")


def expected_length(response: aiohttp.ClientResponse, request: RangeRequest) -> int | None:
    """Body length the response must have (None: unknown, chunked); raises if it is not the
    range asked for."""
    if request.length == -1:
        if response.status != 200:
            raise FetchError(f"{request.where}: HTTP {response.status} for a whole-object read")
        size = response.content_length
        check_size(request, size)
        return size
    end = request.offset + request.length
    if response.status == 206:
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        if match is None:
            raise FetchError(f"{request.where}: HTTP 206 without a valid Content-Range")
        first, last, total = int(match.group(1)), int(match.group(2)), match.group(3)
        size = None if total == "*" else int(total)
        check_size(request, size)
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
    check_size(request, size)
    if size is not None and end > size:
        raise FetchError(f"{request.where}: range runs past the end of the object of {size} bytes")
    if request.offset == 0 and size == request.length:
        return request.length
    raise FetchError(f"{request.where}: server ignored the Range header (HTTP 200)")


def check_size(request: RangeRequest, size: int | None) -> None:
    """The object must still have the size (bytes) the caller knows, if it knows one."""
    if request.size is not None and size is not None and size != request.size:
        raise SourceChangedError(
            f"{request.url}: size is {size} bytes, expected {request.size}; the object has changed"
        )


def http_date(value: str | None) -> datetime | None:
    """``value`` as a time if it is an HTTP date (``Wed, 21 Oct 2015 07:28:00 GMT``), else None.

    Other forms (the ISO times local files record) are not HTTP dates and are not compared
    with what a server says.
    """
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _precondition(request: RangeRequest) -> str:
    if _if_match(request.etag) is not None:
        return f"ETag is no longer {request.etag}"
    return f"modified since {request.last_modified}"


def _raise_unsatisfiable(response: aiohttp.ClientResponse, request: RangeRequest) -> None:
    match = _UNSATISFIED_RANGE.match(response.headers.get("Content-Range", ""))
    size = int(match.group(1)) if match else None
    check_size(request, size)
    of_size = f" of {size} bytes" if size is not None else ""
    raise FetchError(f"{request.where}: range runs past the end of the object{of_size}")


async def error_detail(response: aiohttp.ClientResponse) -> tuple[str | None, str]:
    """S3's error code (``SlowDown``) if the body has one, and a short quote of the body."""
    try:
        body = await response.content.read(_ERROR_BODY_BYTES)
    except (*TRANSIENT_ERRORS, RuntimeError):
        return None, ""
    text = " ".join(body.decode("utf-8", "replace").split())
    match = _S3_ERROR_CODE.search(text)
    quote = text[:_ERROR_QUOTE_CHARS]
    return (match.group(1) if match else None), (f": {quote}" if quote else "")


def same_etag(first: str, second: str) -> bool:
    """Whether two ETags name the same object version, weak prefix and quotes aside (ETags
    from different answers, or one recorded by a scan)."""
    return _bare(first) == _bare(second)


def _bare(etag: str) -> str:
    """An ETag without weak prefix and quotes, for comparing ETags from different sources."""
    return etag.removeprefix("W/").strip('"')


def _if_match(etag: str | None) -> str | None:
    """The If-Match header for ``etag``; none for weak ETags (If-Match compares strongly)."""
    if etag is None or etag.startswith("W/"):
        return None
    return f'"{_bare(etag)}"'
