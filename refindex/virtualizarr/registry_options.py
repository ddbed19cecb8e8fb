"""refindex's ReadOptions for scanning a URL named through a VirtualiZarr registry.

The registry maps URL prefixes to obstore stores; refindex scans with its own I/O engine,
so it takes from the S3 store that serves the URL what says *where* to read: the endpoint,
the region and whether requests go unsigned (``skip_signature``). Credentials are not
copied: refindex signs with the AWS credential chain (environment, ``~/.aws``, SSO,
instance metadata), as all its reads do. Other stores (local, HTTP) need nothing.
"""

from __future__ import annotations

from typing import Any

from refindex.io import ReadOptions


def read_options_for(url: str, registry: Any, base: ReadOptions) -> ReadOptions:
    """``base`` with the endpoint, region and ``anon`` of the S3 store ``registry`` holds for
    ``url`` (when it holds one and says them)."""
    if not url.startswith("s3://") or registry is None:
        return base
    try:
        store, _ = registry.resolve(url)
    except (KeyError, ValueError):
        return base
    config = _config(store)
    changes: dict[str, Any] = {}
    endpoint = config.get("endpoint") or config.get("aws_endpoint")
    if endpoint:
        changes["endpoint_url"] = str(endpoint)
    region = config.get("region") or config.get("aws_region")
    if region:
        changes["region"] = str(region)
    if str(config.get("skip_signature", "")).lower() == "true":
        changes["anon"] = True
    return base.replace(**changes) if changes else base


def _config(store: Any) -> dict:
    try:
        config = store.config
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: BLE001
        # obstore 0.12 panics (a pyo3 PanicException, a BaseException) reading the config
        # of an S3Store made with allow_http=True as a keyword; the environment then decides.
        return {}
    return dict(config) if isinstance(config, dict) else {}
