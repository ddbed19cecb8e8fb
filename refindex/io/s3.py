"""Presign S3 requests locally with botocore, so that each chunk read is a plain HTTP GET."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from urllib.parse import quote, urlencode

from refindex.errors import FetchError
from refindex.io.options import ReadOptions
from refindex.io.urls import split_s3

# Reads sign GET and HEAD; multipart uploads (refindex.upload) POST, PUT and DELETE.
_METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE")
_DNS_BUCKET = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")


class S3Presigner:
    """Turns ``s3://bucket/key`` into a presigned HTTP URL for GET or HEAD.

    Credentials come from the standard AWS chain (environment, config files, SSO, instance
    metadata) unless ``options.anon``. URLs are signed with botocore's SigV4 query signer
    directly, without a botocore client: making one reads botocore's service models, which
    costs half a second of every cold start, and signing needs none of it. Signing is local
    and uncached: the resolver keeps the URLs it made until shortly before they expire.
    """

    def __init__(self, options: ReadOptions) -> None:
        self._options = options

    def sign(self, method: str, url: str, query: Mapping[str, str] | None = None) -> str:
        """A URL for ``method`` on ``url`` with ``query`` parameters (S3's ``uploads``,
        ``partNumber``, ``uploadId`` of multipart uploads), valid ``presign_expires`` seconds."""
        if method not in _METHODS:
            raise ValueError(f"cannot presign {method}; only {', '.join(_METHODS)}")
        bucket, key = split_s3(url)
        return self._sign(method, url, bucket, key, query)

    def renew(self) -> bool:
        """After a refusal (401/403): read the credentials anew for the next signature (they
        may have been rotated); False when requests are unsigned (``anon``)."""
        if self._options.anon:
            return False
        forget_credentials()
        return True

    def sign_bucket(self, method: str, bucket: str, query: Mapping[str, str]) -> str:
        """A URL for ``method`` on the bucket itself (``ListObjectsV2``: ``GET /bucket/?...``)."""
        return self._sign(method, f"s3://{bucket}/", bucket, "", query)

    def _sign(self, method: str, url: str, bucket: str, key: str,
              query: Mapping[str, str] | None) -> str:
        try:
            session = _botocore_session()
            plain = _object_url(bucket, key, self._options, session)
            if query:
                # Every reserved character escaped (a prefix's "/" as %2F), as SigV4's
                # canonical query string has them.
                plain += "?" + urlencode(query, quote_via=_quote_all)
            if self._options.anon:
                return plain
            return _sign(session, method, plain, _region(self._options, session),
                         self._options.presign_expires)
        except FetchError as error:
            raise FetchError(f"{url}: cannot presign an S3 {method}: {error}") from None
        except Exception as error:  # noqa: BLE001 - botocore raises many kinds; all mean "cannot sign"
            raise FetchError(f"{url}: cannot presign an S3 {method}: {error}") from error


def _quote_all(value: str, *_args, **_kwargs) -> str:
    return quote(value, safe="-_.~")


_session = None
_session_lock = threading.Lock()


def _botocore_session():
    """The process's botocore session: it resolves the credential chain once (refreshable
    credentials renew themselves), as boto3's default session does."""
    global _session
    # Imported here: botocore takes a noticeable time to import and only S3 needs it.
    from botocore.session import get_session

    with _session_lock:
        if _session is None:
            _session = get_session()
        return _session


def forget_credentials() -> None:
    """Forget the session, so that the next signature reads the credential chain anew."""
    global _session
    with _session_lock:
        _session = None


def endpoint_url(options: ReadOptions) -> str | None:
    """The S3 endpoint: the option, else ``AWS_ENDPOINT_URL_S3``, else ``AWS_ENDPOINT_URL``."""
    return (
        options.endpoint_url
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
        or None
    )


def _region(options: ReadOptions, session) -> str:
    return options.region or session.get_config_variable("region") or "us-east-1"


def _object_url(bucket: str, key: str, options: ReadOptions, session) -> str:
    """The plain HTTP URL of an object: path style on custom endpoints (SeaweedFS, MinIO,
    Ceph rarely have wildcard DNS for buckets); on AWS, virtual-hosted style where the bucket
    name is a DNS label, path style otherwise (as botocore's "auto" addressing does)."""
    path = quote(key, safe="/~")
    endpoint = endpoint_url(options)
    if endpoint:
        return f"{endpoint.rstrip('/')}/{bucket}/{path}"
    region = _region(options, session)
    if _DNS_BUCKET.fullmatch(bucket):
        return f"https://{bucket}.s3.{region}.amazonaws.com/{path}"
    return f"https://s3.{region}.amazonaws.com/{bucket}/{path}"


def _sign(session, method: str, url: str, region: str, expires: int) -> str:
    from botocore.auth import S3SigV4QueryAuth
    from botocore.awsrequest import AWSRequest

    credentials = session.get_credentials()
    if credentials is None:
        raise FetchError("no AWS credentials found (environment, ~/.aws, SSO or instance "
                         "metadata); set them, or read public data with anon=True")
    request = AWSRequest(method=method, url=url)
    S3SigV4QueryAuth(credentials.get_frozen_credentials(), "s3", region,
                     expires=expires).add_auth(request)
    return request.url
