"""The HTTP exchanges of a multipart upload — start, send a part, complete, abort — each
one request, retried as reads are (``refindex.io.attempts``: backoff with jitter, a deadline,
one renewal of the URL's signature on 401/403) and checked before it counts as done.

A part is sent with its ``Content-MD5``, so S3 refuses bytes damaged on the way
(``BadDigest``) — except to URLs presigned with signature version 2, which sign that header
as empty; its ETag is checked against the MD5 too, for servers that ignore the header (and
for those URLs). Both are retried: the bytes on disk are still good.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import aiohttp
from yarl import URL

from refindex.errors import FetchError, RefindexError, UploadError
from refindex.io.attempts import AttemptEvents, AttemptLoop
from refindex.io.resolver import ResolvedUrl
from refindex.io.retry import RetryableError
from refindex.io.validation import check_status, same_etag
from refindex.upload.options import UploadOptions

_T = TypeVar("_T")

Renew = Callable[[], bool]
"""After a 401/403: make the next URL work (read credentials anew); False when nothing can."""

_DENIED_HINT = ("; has the presigned URL expired, or do the credentials lack permission to "
                "write?")

_ERROR_CODE = re.compile(r"<Code>\s*([A-Za-z]+)\s*</Code>")
_ETAG = re.compile(r"<ETag>\s*(.*?)\s*</ETag>", re.S)
# Answers that say the bytes arrived damaged: sending them again may well succeed.
_DAMAGED = ("BadDigest", "InvalidDigest", "IncompleteBody", "RequestTimeout")
_QUOTE_CHARS = 300
# No Content-Type is sent: S3 needs none for these requests, and a URL presigned with
# signature version 2 signs it as empty (aiohttp would add one for a bytes body).
_NO_TYPE = ("Content-Type",)


@dataclass
class UploadCounters:
    """Requests sent (a retried one counts each time), retries and part bytes acknowledged."""

    requests: int = 0
    retries: int = 0
    bytes_sent: int = 0


class Exchanges:
    """Sends the requests of multipart uploads over one aiohttp session through the one
    attempt loop (``refindex.io.attempts``), at most ``options.concurrency`` at once per
    host (fewer while the host throttles).

    Each exchange takes ``url``, called for every attempt (an S3 URL is signed anew each
    time), and ``renew``, called once when the server refuses (401/403: an expired signature,
    rotated credentials) to make the next ``url()`` work, False when nothing can."""

    def __init__(self, session: aiohttp.ClientSession, options: UploadOptions,
                 counters: UploadCounters) -> None:
        self._session = session
        self._options = options
        self._attempts = AttemptLoop(options.retry, options.concurrency, UploadError)
        self.counters = counters

    async def create(self, url: Callable[[], str], where: str,
                     renew: Renew | None = None) -> str:
        """POST to ``url()`` (CreateMultipartUpload); returns the XML answer."""
        async def once(target: URL) -> str:
            async with self._session.post(target, data=b"",
                                          skip_auto_headers=_NO_TYPE) as response:
                await _check(response, where)
                return await response.text()

        return await self.retried(url, where, once, renew)

    async def put_part(self, url: Callable[[], str], data: bytes, md5: bytes,
                       where: str, renew: Renew | None = None) -> str:
        """PUT ``data`` to ``url()``; returns the part's ETag once it is the MD5 ``md5``."""
        expected = md5.hex()
        content_md5 = {"Content-MD5": base64.b64encode(md5).decode()}

        async def once(target: URL) -> str:
            # A SigV2 presigned URL signs Content-MD5 and Content-Type as the presigner saw
            # them (none): sending either would break its signature. The ETag still checks.
            headers = {} if _signed_v2(target) else content_md5
            async with self._session.put(target, data=data, headers=headers,
                                         skip_auto_headers=_NO_TYPE) as response:
                await _check(response, where)
                etag = response.headers.get("ETag")
            if etag is None:
                raise UploadError(f"{where}: the server answered without an ETag; the part "
                                  "cannot be named in CompleteMultipartUpload")
            if self._options.verify_etag and not same_etag(etag, expected):
                raise RetryableError(f"ETag {etag} is not the MD5 {expected} of the bytes "
                                     "sent: the stored part differs")
            self.counters.bytes_sent += len(data)
            return etag

        return await self.retried(url, where, once, renew)

    async def complete(self, url: Callable[[], str], etags: list[str], where: str,
                       renew: Renew | None = None) -> str | None:
        """POST the parts' ETags to ``url()`` (CompleteMultipartUpload); returns the object's
        ETag if the answer names one."""
        body = _complete_document(etags)

        async def once(target: URL) -> str | None:
            async with self._session.post(target, data=body,
                                          skip_auto_headers=_NO_TYPE) as response:
                await _check(response, where)
                answer = await response.text()
                etag = response.headers.get("ETag")
            # S3 may answer 200 and report the failure in the body, which it sends late.
            code = _ERROR_CODE.search(answer)
            if "<Error>" in answer and code:
                if code.group(1) in ("InternalError", "SlowDown", "ServiceUnavailable"):
                    raise RetryableError(f"CompleteMultipartUpload: {code.group(1)}",
                                         throttled=code.group(1) == "SlowDown")
                raise UploadError(f"{where}: CompleteMultipartUpload failed: "
                                  f"{_quote(answer)}")
            found = _ETAG.search(answer)
            return html.unescape(found.group(1)) if found else etag

        return await self.retried(url, where, once, renew)

    async def abort(self, url: str, where: str) -> None:
        """DELETE ``url`` (AbortMultipartUpload), once; the caller is already failing."""
        self.counters.requests += 1
        async with self._session.delete(_url(url)) as response:
            if response.status not in (200, 204, 404):
                raise UploadError(f"{where}: abort answered HTTP {response.status}: "
                                  f"{_quote(await response.text())}")

    async def retried(self, url: Callable[[], str], where: str,
                      once: Callable[[URL], Awaitable[_T]], renew: Renew | None = None) -> _T:
        """``once(url())`` until it succeeds, as ``options.retry`` says, each attempt within
        ``options.part_timeout``; a refusal is renewed once with ``renew()``."""
        timeout = self._options.part_timeout

        async def resolve() -> ResolvedUrl:
            return ResolvedUrl(url())

        async def send(target: URL, _headers: Mapping[str, str]) -> _T:
            try:
                async with asyncio.timeout(timeout) as timer:
                    return await once(target)
            except TimeoutError:
                if not timer.expired():
                    raise
                raise RetryableError(f"timed out: not done within part_timeout, "
                                     f"{timeout:g} s") from None

        try:
            return await self._attempts.run(
                where, resolve, send, refresh=(lambda _stale: renew()) if renew else None,
                events=_Counted(self.counters), denied_hint=_DENIED_HINT)
        except UploadError:
            raise
        except RefindexError as error:
            raise UploadError(f"{where}: {error}") from error


class _Counted(AttemptEvents):
    """The attempt loop's events, counted in the uploader's counters."""

    def __init__(self, counters: UploadCounters) -> None:
        self._counters = counters

    def attempted(self) -> None:
        self._counters.requests += 1

    def retrying(self, backoff: float) -> None:
        self._counters.retries += 1


def md5_of(data: bytes) -> bytes:
    """The MD5 digest of ``data`` (what S3 checks parts against, not a security measure)."""
    return hashlib.md5(data, usedforsecurity=False).digest()


def multipart_etag(part_md5s: list[bytes]) -> str:
    """S3's ETag of an object uploaded in parts: the MD5 of the parts' MD5s, ``-`` and the
    number of parts."""
    return f"{hashlib.md5(b''.join(part_md5s), usedforsecurity=False).hexdigest()}-{len(part_md5s)}"


async def _check(response: aiohttp.ClientResponse, where: str) -> None:
    """Return for a 2xx answer; raise what any other means."""
    if 200 <= response.status < 300:
        return
    if response.status == 400:
        text = await response.text()
        code = _ERROR_CODE.search(text)
        if code and code.group(1) in _DAMAGED:
            raise RetryableError(f"the server refused the bytes it received ({code.group(1)}): "
                                 "they differ from the checksum sent")
        raise UploadError(f"{where}: HTTP 400: {_quote(text)}")
    try:
        await check_status(response, where, None)
    except FetchError as error:
        raise UploadError(str(error)) from None
    raise UploadError(f"{where}: unexpected HTTP {response.status}")


def _complete_document(etags: list[str]) -> bytes:
    parts = "".join(f"<Part><PartNumber>{number}</PartNumber><ETag>{html.escape(etag)}</ETag>"
                    "</Part>" for number, etag in enumerate(etags, 1))
    return f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>".encode()


def _signed_v2(url: URL) -> bool:
    """Whether ``url`` is presigned with S3's signature version 2 (query ``Signature`` and
    ``AWSAccessKeyId``, no ``X-Amz-Algorithm``)."""
    query = url.query
    return "Signature" in query and "AWSAccessKeyId" in query


def _url(url: str) -> URL:
    # Presigned URLs are sent exactly as signed: re-quoting would break the signature.
    return URL(url, encoded=True)


def _quote(text: str) -> str:
    return " ".join(text.split())[:_QUOTE_CHARS]
