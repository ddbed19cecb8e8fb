"""Classify source URLs: local path, ``file://``, ``s3://bucket/key``, ``http(s)://``."""

from __future__ import annotations

import os
from urllib.parse import unquote, urlsplit

from refindex.errors import SourcePolicyError

SCHEMES = ("file", "s3", "http", "https")


def scheme_of(url: str) -> str:
    """``file`` for local paths and ``file://`` URLs, else ``s3``, ``http`` or ``https``."""
    if "://" not in url:
        return "file"
    scheme = url.split("://", 1)[0].lower()
    if scheme not in SCHEMES:
        raise SourcePolicyError(
            f"{url}: unsupported URL scheme {scheme!r}; "
            "refindex reads local paths, file://, s3://, http:// and https://"
        )
    return scheme


def is_local(url: str) -> bool:
    """True for local paths and ``file://`` URLs."""
    return scheme_of(url) == "file"


def local_path(url: str) -> str:
    """The absolute filesystem path of a local path or ``file://`` URL."""
    if url.lower().startswith("file://"):
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise SourcePolicyError(f"{url}: file:// URLs must name a local path")
        return os.path.abspath(unquote(parts.path))
    return os.path.abspath(url)


def split_s3(url: str) -> tuple[str, str]:
    """``(bucket, key)`` of ``s3://bucket/key``; the key is taken verbatim."""
    rest = url[len("s3://") :]
    bucket, _, key = rest.partition("/")
    if not bucket or not key:
        raise SourcePolicyError(f"{url}: an S3 URL must be s3://bucket/key")
    return bucket, key
