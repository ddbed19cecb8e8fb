"""The HTTP rules of answering a GET of stored bytes: conditional requests (``If-None-Match``),
single byte ranges (``Range`` → 206, or 416 when unsatisfiable or malformed), gzip for
clients that accept it, and CORS. Pure functions of header values, tested on their own."""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)
GZIP_MIN_SIZE = 256
"""Bytes below which a document is sent as it is (gzip would not pay for its header)."""


class RangeNotSatisfiable(Exception):
    """A ``Range`` header that is malformed or asks for no byte of the body; answered 416."""


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``start`` to ``stop`` (exclusive) of a body of ``size`` bytes."""

    start: int
    stop: int
    size: int

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.stop - 1}/{self.size}"


def none_match(header: str | None, etag: str) -> bool:
    """Whether ``If-None-Match: header`` names ``etag`` (weak comparison, as RFC 9110 asks
    for this header), i.e. the client's copy is current and the answer is 304."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in header.split(","))


def byte_range(header: str | None, size: int) -> ByteRange | None:
    """The range ``Range: header`` asks of a body of ``size`` bytes; None for no header or
    several ranges (answered with the whole body, as RFC 9110 allows); raises
    RangeNotSatisfiable for a malformed or unsatisfiable one."""
    if header is None:
        return None
    if "," in header and header.strip().lower().startswith("bytes"):
        return None
    match = _RANGE.match(header)
    if match is None:
        raise RangeNotSatisfiable(f"malformed Range {header[:80]!r}")
    first, last = match.groups()
    if not first and not last:
        raise RangeNotSatisfiable(f"malformed Range {header[:80]!r}")
    if not first:  # the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(f"Range {header[:80]!r} of {size} bytes")
        return ByteRange(max(size - suffix, 0), size, size)
    start = int(first)
    stop = size if not last else min(int(last) + 1, size)
    if last and int(last) < start:
        raise RangeNotSatisfiable(f"malformed Range {header[:80]!r}")
    if start >= size:
        raise RangeNotSatisfiable(f"Range {header[:80]!r} of {size} bytes")
    return ByteRange(start, stop, size)


def accepts_gzip(header: str | None) -> bool:
    """Whether ``Accept-Encoding: header`` accepts gzip (and does not refuse it with q=0)."""
    for part in (header or "").split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            q = params.strip().lower().removeprefix("q=")
            try:
                return not params or float(q) > 0
            except ValueError:
                return False
    return False


def gzipped(data: bytes) -> bytes:
    """``data`` gzip-compressed; fixed mtime, so the same document gives the same bytes."""
    return gzip.compress(data, compresslevel=6, mtime=0)


def cors_headers(origin: str | None, allowed: tuple[str, ...]) -> dict[str, str]:
    """The CORS headers of an answer to a request from ``origin``: none when CORS is off or
    the origin is not allowed."""
    if not allowed or origin is None:
        return {}
    if "*" in allowed:
        return {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": _EXPOSED}
    if origin in allowed:
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
                "Access-Control-Expose-Headers": _EXPOSED}
    return {}


def preflight_headers(origin: str | None, allowed: tuple[str, ...],
                      private_network: bool = False) -> dict[str, str]:
    """The answer to a CORS preflight (``OPTIONS``) from ``origin``. ``private_network``:
    the browser asks whether a public page may reach this server on a private or loopback
    address (``Access-Control-Request-Private-Network: true``, Chromium's Private Network
    Access: a viewer on a public site reading ``refindex serve`` on 127.0.0.1); an allowed
    origin is told yes."""
    headers = cors_headers(origin, allowed)
    if headers:
        headers.update({"Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
                        "Access-Control-Allow-Headers": "Range, If-None-Match, Authorization",
                        "Access-Control-Max-Age": "86400"})
        if private_network:
            headers["Access-Control-Allow-Private-Network"] = "true"
    return headers


_EXPOSED = "Content-Length, Content-Range, Content-Encoding, ETag, Accept-Ranges"
