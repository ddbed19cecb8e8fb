"""How long a resolved URL is good for: signature parameters, response headers, renewal."""

from __future__ import annotations

import calendar
import time

from refindex.io.lifetime import header_expiry, is_signed, renewal_time, url_expiry

NOW = calendar.timegm((2026, 1, 2, 3, 4, 5))


def _amz_date(epoch: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(epoch))


def test_sigv4_url_expires_at_its_date_plus_expires():
    url = (f"https://b.s3.amazonaws.com/k?X-Amz-Date={_amz_date(NOW - 100)}"
           "&X-Amz-Expires=3600&X-Amz-Signature=abc")
    assert url_expiry(url, NOW) == NOW - 100 + 3600


def test_gcs_v4_url_is_read_like_sigv4():
    url = (f"https://storage.googleapis.com/b/k?X-Goog-Date={_amz_date(NOW)}"
           "&X-Goog-Expires=600&X-Goog-Signature=abc")
    assert url_expiry(url, NOW) == NOW + 600


def test_sigv4_url_from_a_signer_with_another_clock_gets_its_full_lifetime():
    url = (f"https://b.s3.amazonaws.com/k?X-Amz-Date={_amz_date(NOW - 7200)}"
           "&X-Amz-Expires=3600&X-Amz-Signature=abc")
    assert url_expiry(url, NOW) == NOW + 3600


def test_sigv2_and_cloudfront_urls_expire_at_expires():
    assert url_expiry(f"https://b.s3.amazonaws.com/k?Expires={NOW + 60}&Signature=x", NOW) == (
        NOW + 60)
    assert url_expiry(f"https://d.cloudfront.net/k?Expires={NOW + 90}&Signature=x&Key-Pair-Id=K",
                      NOW) == NOW + 90


def test_azure_sas_url_expires_at_se():
    url = "https://a.blob.core.windows.net/c/k?se=2026-01-02T04:04:05Z&sig=abc"
    assert url_expiry(url, NOW) == NOW + 3600


def test_unsigned_url_states_no_expiry():
    assert url_expiry(f"https://example.org/k?expires={NOW + 5}", NOW) is None
    assert not is_signed("https://example.org/k?expires=5")
    assert is_signed("https://b.s3.amazonaws.com/k?X-Amz-Signature=abc")


def test_headers_give_max_age_or_expires():
    assert header_expiry({"Cache-Control": "private, max-age=120"}, NOW) == NOW + 120
    expires = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(NOW + 30))
    assert header_expiry({"Expires": expires}, NOW) == NOW + 30
    assert header_expiry({"Cache-Control": "no-cache, max-age=0"}, NOW) is None
    assert header_expiry({"Expires": "0"}, NOW) is None


def test_renewal_comes_margin_before_expiry_but_not_before_halfway():
    assert renewal_time(NOW + 3600, NOW, 300) == NOW + 3300
    assert renewal_time(NOW + 10, NOW, 300) == NOW + 5
