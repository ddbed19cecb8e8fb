"""Presign S3 requests locally with botocore, so that each chunk read is a plain HTTP GET."""

from __future__ import annotations

import os
import threading

from refindex.errors import FetchError
from refindex.io.options import ReadOptions
from refindex.io.urls import split_s3

_OPERATIONS = {"GET": "get_object", "HEAD": "head_object"}


class S3Presigner:
    """Turns ``s3://bucket/key`` into a presigned HTTP URL for GET or HEAD.

    Credentials come from the standard AWS chain (environment, config files, SSO, instance
    metadata) unless ``options.anon``. The botocore client is made on first use, since
    building it reads botocore's service models (tens of milliseconds). Signing is local and
    uncached: the resolver keeps the URLs it made until shortly before they expire.
    """

    def __init__(self, options: ReadOptions) -> None:
        self._options = options
        self._lock = threading.Lock()
        self._client = None

    def sign(self, method: str, url: str) -> str:
        """A URL for ``method`` (GET or HEAD) on ``url``, valid ``presign_expires`` seconds."""
        bucket, key = split_s3(url)
        try:
            return self._get_client().generate_presigned_url(
                _OPERATIONS[method],
                Params={"Bucket": bucket, "Key": key},
                ExpiresIn=self._options.presign_expires,
            )
        except Exception as error:  # noqa: BLE001 - botocore raises many kinds; all mean "cannot sign"
            raise FetchError(f"{url}: cannot presign an S3 {method}: {error}") from error

    def _get_client(self):
        with self._lock:
            if self._client is None:
                self._client = _make_client(self._options)
            return self._client


def endpoint_url(options: ReadOptions) -> str | None:
    """The S3 endpoint: the option, else ``AWS_ENDPOINT_URL_S3``, else ``AWS_ENDPOINT_URL``."""
    return (
        options.endpoint_url
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
        or None
    )


def _make_client(options: ReadOptions):
    # Imported here: botocore takes a noticeable time to import and only S3 needs it.
    from botocore import UNSIGNED
    from botocore.config import Config
    from botocore.session import get_session

    session = get_session()
    region = options.region or session.get_config_variable("region") or "us-east-1"
    endpoint = endpoint_url(options)
    config = Config(
        signature_version=UNSIGNED if options.anon else "s3v4",
        # Custom endpoints (SeaweedFS, MinIO, Ceph) rarely have wildcard DNS for buckets.
        s3={"addressing_style": "path" if endpoint else "auto"},
    )
    return session.create_client("s3", region_name=region, endpoint_url=endpoint, config=config)
