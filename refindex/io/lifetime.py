"""How long a resolved URL stays usable: from its signature parameters or response headers.

Times are seconds since the epoch (wall clock), since signed URLs state their expiry in it.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, urlsplit

# Query parameters that carry a signature: such a URL authorises itself and expires.
_SIGNATURES = frozenset({"x-amz-signature", "x-goog-signature", "signature", "sig"})
_SIGNED_DATE = "%Y%m%dT%H%M%SZ"


def now() -> float:
    """Seconds since the epoch; the one clock of resolution (tests replace it to move time)."""
    return time.time()


def is_signed(url: str) -> bool:
    """True for presigned URLs (S3 SigV2/V4, GCS, CloudFront, Azure SAS)."""
    return not _SIGNATURES.isdisjoint(_query(url))


def url_expiry(url: str, at: float) -> float | None:
    """When the signed ``url`` stops working, from its query; None when it does not say.

    Understands ``X-Amz-Date`` + ``X-Amz-Expires`` (S3 SigV4, and GCS's ``X-Goog-*``),
    ``Expires`` (S3 SigV2, CloudFront) and ``se`` (Azure SAS). ``at`` is the time now.
    """
    query = _query(url)
    if _SIGNATURES.isdisjoint(query):
        return None
    for prefix in ("x-amz-", "x-goog-"):
        date, expires = query.get(prefix + "date"), query.get(prefix + "expires")
        if date and expires:
            try:
                signed, seconds = calendar.timegm(time.strptime(date, _SIGNED_DATE)), int(expires)
            except ValueError:
                return None
            end = signed + seconds
            # A signer whose clock differs from ours must not make a URL signed a moment ago
            # look expired, or valid for longer than it was issued for.
            return end if at < end <= at + seconds else at + seconds
    return _absolute_expiry(query, at)


def header_expiry(headers: Mapping[str, str], at: float) -> float | None:
    """When a response stops being reusable, from ``Cache-Control: max-age`` or
    ``Expires``; None when neither gives a time in the future."""
    for directive in headers.get("Cache-Control", "").split(","):
        name, _, value = directive.strip().partition("=")
        if name.lower() == "max-age" and value.strip('"').isdigit() and int(value.strip('"')) > 0:
            return at + int(value.strip('"'))
    try:
        when = parsedate_to_datetime(headers.get("Expires", "")).timestamp()
    except (TypeError, ValueError):
        return None
    return when if when > at else None


def renewal_time(expires: float, at: float, margin: float) -> float:
    """When to replace a URL that expires at ``expires``: ``margin`` seconds before, but no
    earlier than halfway through its remaining life (a 10 s URL is not renewed per read)."""
    return expires - min(margin, max(expires - at, 0.0) / 2)


def _absolute_expiry(query: dict[str, str], at: float) -> float | None:
    expires = query.get("expires") or query.get("se")
    if not expires:
        return None
    if expires.isdigit():
        end = float(expires)
    else:
        try:
            end = datetime.fromisoformat(expires.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    # Already past by our clock but handed out just now: a clock differs; the lifetime is
    # unknown, and a 403 will tell when it is over.
    return end if end > at else None


def _query(url: str) -> dict[str, str]:
    return {name.lower(): value for name, value in parse_qsl(urlsplit(url).query)}
