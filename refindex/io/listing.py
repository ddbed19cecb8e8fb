"""Listing an S3 prefix: ListObjectsV2, page by page, through the engine.

Each page is one GET of ``/bucket/?list-type=2&prefix=...``, presigned locally like every
S3 request of refindex (unsigned with ``anon``) and sent with the engine's retries, limits
and counters (``ReadEngine.get_signed``). Objects come back as ``ObjectInfo`` with their
ETag and last-modified time in the form a HEAD gives them, so that a listing can stand in
for a HEAD per object when a collection is scanned and compared with what it was.

Keys are asked for URL-encoded (``encoding-type=url``): a raw key may hold characters XML
cannot carry. They are decoded only when the answer says it encoded them, as botocore does.

Times: a listing gives ISO 8601 (AWS ``2026-12-04T02:26:42.000Z``, SeaweedFS without the
milliseconds), a HEAD an HTTP date with whole seconds (``Fri, 04 Dec 2026 02:26:42 GMT``).
The listed time is cut to whole seconds, as the HTTP date of the same moment is, so the two
compare equal as strings.
"""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import unquote_plus
from xml.etree import ElementTree

from refindex.errors import FetchError
from refindex.io.loop import run_sync
from refindex.io.policy import check_sources
from refindex.io.requests import ObjectInfo
from refindex.io.s3 import S3Presigner

if TYPE_CHECKING:
    from refindex.io.engine import ReadEngine

_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
MAX_PAGE_SIZE = 1000  # keys per page: S3 answers no more whatever is asked


async def list_objects(engine: ReadEngine, url: str, *,
                       page_size: int = MAX_PAGE_SIZE) -> list[ObjectInfo]:
    """Every object under the prefix ``url`` (``s3://bucket/prefix``; ``s3://bucket/`` is the
    whole bucket), sorted by key, ``page_size`` keys per request; keys ending in ``/`` with no
    bytes (folder markers) are left out. No object is an empty list, no bucket an error."""
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be 1 to {MAX_PAGE_SIZE}, not {page_size}")
    bucket, prefix = split_prefix(url)
    check_sources(engine.options, (url,))
    signer = S3Presigner(engine.options)
    found: list[ObjectInfo] = []
    token = None
    while True:
        query = {"list-type": "2", "prefix": prefix, "max-keys": str(page_size),
                 "encoding-type": "url"}
        if token:
            query["continuation-token"] = token
        page = await engine.get_signed(url, lambda q=query: signer.sign_bucket("GET", bucket, q))
        objects, token = parse_page(page, bucket, url)
        found.extend(objects)
        if token is None:
            return sorted(found, key=lambda info: info.url)


def list_objects_sync(engine: ReadEngine, url: str,
                      page_size: int = MAX_PAGE_SIZE) -> list[ObjectInfo]:
    """``list_objects`` from synchronous code (runs on refindex's I/O thread)."""
    return run_sync(list_objects(engine, url, page_size=page_size))


def split_prefix(url: str) -> tuple[str, str]:
    """``(bucket, prefix)`` of ``s3://bucket/prefix`` (the prefix may be empty)."""
    if not url.startswith("s3://"):
        raise FetchError(f"{url}: only s3:// prefixes can be listed")
    bucket, _, prefix = url[len("s3://"):].partition("/")
    if not bucket:
        raise FetchError(f"{url}: an S3 prefix must be s3://bucket/prefix")
    return bucket, prefix


def parse_page(page: bytes, bucket: str, url: str) -> tuple[list[ObjectInfo], str | None]:
    """The objects of one ListObjectsV2 answer, and the token of the next page (None: last)."""
    try:
        root = ElementTree.fromstring(page)
    except ElementTree.ParseError as error:
        raise FetchError(f"{url}: the listing is not XML ({error}): {page[:200]!r}") from None
    ns = _NS if root.tag.startswith(_NS) else ""
    if root.tag != f"{ns}ListBucketResult":
        raise FetchError(f"{url}: unexpected listing answer <{root.tag}>: {page[:200]!r}")
    encoded = (root.findtext(f"{ns}EncodingType") or "").strip().lower() == "url"
    objects = []
    for item in root.iter(f"{ns}Contents"):
        key = item.findtext(f"{ns}Key") or ""
        key = unquote_plus(key) if encoded else key
        size = _size(item.findtext(f"{ns}Size"), key, url)
        if key.endswith("/") and size == 0:
            continue
        objects.append(ObjectInfo(f"s3://{bucket}/{key}", size, _etag(item.findtext(f"{ns}ETag")),
                                  _http_date(item.findtext(f"{ns}LastModified"))))
    truncated = (root.findtext(f"{ns}IsTruncated") or "false").strip().lower() == "true"
    token = root.findtext(f"{ns}NextContinuationToken") if truncated else None
    if truncated and not token:
        raise FetchError(f"{url}: the listing is truncated but gives no continuation token")
    return objects, token


def _size(value: str | None, key: str, url: str) -> int:
    try:
        return int(value or "")
    except ValueError:
        raise FetchError(f"{url}: the listing gives key {key!r} no size ({value!r})") from None


def _etag(value: str | None) -> str | None:
    """The ETag quoted, as the ``ETag`` header of a HEAD has it."""
    if not value:
        return None
    value = value.strip()
    return value if value.startswith('"') or value.startswith("W/") else f'"{value}"'


def _http_date(value: str | None) -> str | None:
    """ISO 8601 (``2026-12-04T02:26:42.000Z``) as an HTTP date (``Fri, 04 Dec 2026 02:26:42
    GMT``), the form of a HEAD's ``Last-Modified``; HTTP dates have whole seconds. A value
    that is no ISO 8601 time is kept as it is (it then matches no HEAD, so is never trusted)."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return value
    if moment.tzinfo is None:
        return value
    whole_seconds = moment.astimezone(UTC).replace(microsecond=0)
    return email.utils.format_datetime(whole_seconds, usegmt=True)
