"""Listing an S3 prefix: ListObjectsV2, page by page, through the engine.

Each page is one GET of ``/bucket/?list-type=2&prefix=...``, presigned locally like every
S3 request of refindex and sent with the engine's retries, limits and counters
(``ReadEngine.get_signed``). Objects come back as ``ObjectInfo`` with their ETag and
last-modified time in the form a HEAD gives them, so that a listing can stand in for a HEAD
per object when a collection is scanned and compared with what it was.
"""

from __future__ import annotations

import email.utils
from datetime import datetime
from xml.etree import ElementTree

from refindex.errors import FetchError
from refindex.io.requests import ObjectInfo
from refindex.io.s3 import S3Presigner

_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def split_prefix(url: str) -> tuple[str, str]:
    """``(bucket, prefix)`` of ``s3://bucket/prefix`` (the prefix may be empty)."""
    if not url.startswith("s3://"):
        raise FetchError(f"{url}: only s3:// prefixes can be listed")
    bucket, _, prefix = url[len("s3://"):].partition("/")
    if not bucket:
        raise FetchError(f"{url}: an S3 prefix must be s3://bucket/prefix")
    return bucket, prefix


async def list_objects(engine, url: str, page_size: int = 1000) -> list[ObjectInfo]:
    """Every object under the prefix ``url`` (``s3://bucket/prefix``), sorted by key; keys
    ending in ``/`` with no bytes (folder markers) are left out."""
    bucket, prefix = split_prefix(url)
    signer = S3Presigner(engine.options)
    found: list[ObjectInfo] = []
    token = None
    while True:
        query = {"list-type": "2", "prefix": prefix, "max-keys": str(page_size)}
        if token:
            query["continuation-token"] = token
        page = await engine.get_signed(url, lambda q=query: signer.sign_bucket("GET", bucket, q))
        objects, token = parse_page(page, bucket, url)
        found.extend(objects)
        if token is None:
            return sorted(found, key=lambda info: info.url)


def parse_page(page: bytes, bucket: str, url: str) -> tuple[list[ObjectInfo], str | None]:
    """The objects of one ListObjectsV2 answer, and the token of the next page (None: last)."""
    try:
        root = ElementTree.fromstring(page)
    except ElementTree.ParseError as error:
        raise FetchError(f"{url}: the listing is not XML ({error}): {page[:200]!r}") from None
    ns = _NS if root.tag.startswith(_NS) else ""
    if root.tag != f"{ns}ListBucketResult":
        raise FetchError(f"{url}: unexpected listing answer <{root.tag}>: {page[:200]!r}")
    objects = []
    for item in root.iter(f"{ns}Contents"):
        key = item.findtext(f"{ns}Key") or ""
        size = int(item.findtext(f"{ns}Size") or 0)
        if key.endswith("/") and size == 0:
            continue
        objects.append(ObjectInfo(f"s3://{bucket}/{key}", size, _etag(item.findtext(f"{ns}ETag")),
                                  _http_date(item.findtext(f"{ns}LastModified"))))
    truncated = (root.findtext(f"{ns}IsTruncated") or "false").strip().lower() == "true"
    token = root.findtext(f"{ns}NextContinuationToken") if truncated else None
    if truncated and not token:
        raise FetchError(f"{url}: the listing is truncated but gives no continuation token")
    return objects, token


def _etag(value: str | None) -> str | None:
    """The ETag quoted, as the ``ETag`` header of a HEAD has it."""
    if not value:
        return None
    value = value.strip()
    return value if value.startswith('"') or value.startswith("W/") else f'"{value}"'


def _http_date(value: str | None) -> str | None:
    """ISO 8601 (``2026-12-04T02:26:42.000Z``) as an HTTP date (``Fri, 04 Dec 2026 02:26:42
    GMT``), the form of a HEAD's ``Last-Modified``; HTTP dates have whole seconds."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return value
    return email.utils.format_datetime(moment.replace(microsecond=0), usegmt=True)
