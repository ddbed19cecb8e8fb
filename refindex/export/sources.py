"""An Index's sources as Icechunk sees them: the URL of each (local paths as ``file://``), the
checksum Icechunk records per chunk (the ETag, else the last-modified time), and the virtual
chunk containers — one per bucket, host or local directory — with their credentials."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from refindex.errors import UnsupportedFeatureError
from refindex.index import Source
from refindex.io.options import ReadOptions


@dataclass(frozen=True)
class ExportSource:
    """One source ready for ``VirtualChunkSpec``: its URL, size in bytes (for references to
    the whole object), and checksum (an ETag string or a last-modified time)."""

    url: str
    size: int | None
    etag: str | None
    modified: datetime | None


def export_sources(sources: list[Source], where: str) -> list[ExportSource]:
    """Every source of an index, in source-id order."""
    return [ExportSource(_location(s.url, where), s.size, s.etag or None,
                         None if s.etag else _modified(s.last_modified)) for s in sources]


def _location(url: str, where: str) -> str:
    if url.startswith("file://"):
        return url
    if "://" not in url:
        return "file://" + os.path.abspath(url)
    scheme = urlsplit(url).scheme
    if scheme not in ("s3", "http", "https"):
        raise UnsupportedFeatureError(where, url, f"sources under {scheme}:// are not exported "
                                      "to Icechunk here (only local files, s3:// and http(s)://)")
    return url


def _modified(value: str | None) -> datetime | None:
    """The last-modified time as Icechunk compares it: whole seconds, rounded up (local files
    record fractions; Icechunk keeps seconds and refuses an object modified after them)."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if when.microsecond:
        when = when.replace(microsecond=0) + timedelta(seconds=1)
    return when


def container_prefixes(sources: list[ExportSource]) -> list[str]:
    """The URL prefixes of the virtual chunk containers the sources need: ``s3://bucket/``,
    ``https://host/``, and for local files the deepest directory holding them all — one per
    top-level directory, as Icechunk takes no container for ``file:///`` itself."""
    prefixes = set()
    local: dict[str, list[str]] = {}
    for source in sources:
        parts = urlsplit(source.url)
        if parts.scheme == "file":
            directory = os.path.dirname(parts.path)
            local.setdefault(directory.strip("/").split("/")[0], []).append(directory)
        else:
            prefixes.add(f"{parts.scheme}://{parts.netloc}/")
    for directories in local.values():
        common = os.path.commonpath(directories)
        prefixes.add("file://" + common.rstrip("/") + "/")
    return sorted(prefixes)


def virtual_chunk_container(prefix: str, options: ReadOptions):
    """The Icechunk container for ``prefix``, its object store set up from ``options``
    (the S3 endpoint: path-style and plain HTTP allowed on custom endpoints)."""
    import icechunk

    from refindex.io.s3 import endpoint_url

    scheme = urlsplit(prefix).scheme
    if scheme == "file":
        store = icechunk.local_filesystem_store(urlsplit(prefix).path)
    elif scheme == "s3":
        endpoint = endpoint_url(options)
        store = icechunk.s3_store(region=options.region or _region(), endpoint_url=endpoint,
                                  allow_http=bool(endpoint and endpoint.startswith("http:")),
                                  anonymous=options.anon, s3_compatible=bool(endpoint),
                                  force_path_style=bool(endpoint))
    else:
        store = icechunk.http_store()
    return icechunk.VirtualChunkContainer(prefix, store)


def container_credentials(prefixes: list[str], options: ReadOptions) -> dict:
    """``authorize_virtual_chunk_access`` for the containers: S3 credentials from botocore's
    chain (as refindex's own reads use), anonymous with ``options.anon``."""
    import icechunk

    access = {}
    for prefix in prefixes:
        if not prefix.startswith("s3://"):
            access[prefix] = None
        elif options.anon:
            access[prefix] = icechunk.s3_anonymous_credentials()
        else:
            access[prefix] = s3_credentials()
    return icechunk.containers_credentials(access)


def s3_credentials():
    """Static Icechunk S3 credentials from botocore's credential chain, or from the
    environment when it finds none."""
    import icechunk

    keys = botocore_keys()
    if keys is None:
        return icechunk.s3_from_env_credentials()
    return icechunk.s3_static_credentials(**keys)


def botocore_keys() -> dict | None:
    """``access_key_id``, ``secret_access_key`` and ``session_token`` from botocore's
    credential chain (environment, config files, SSO, ...), as refindex's own S3 reads use
    them; None when it finds none."""
    from refindex.io.s3 import _botocore_session

    found = _botocore_session().get_credentials()
    if found is None:
        return None
    frozen = found.get_frozen_credentials()
    return {"access_key_id": frozen.access_key, "secret_access_key": frozen.secret_key,
            "session_token": frozen.token}


def _region() -> str:
    from refindex.io.s3 import _botocore_session

    return _botocore_session().get_config_variable("region") or "us-east-1"
