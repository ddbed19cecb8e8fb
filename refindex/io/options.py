"""ReadOptions: every knob of reading, in one frozen, documented, picklable object."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MiB = 1024 * 1024

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class ReadOptions:
    """How refindex reads bytes: endpoints, credentials, concurrency, timeouts, retries, blocks.

    Every field can be set from the environment as ``REFINDEX_<FIELD NAME IN CAPITALS>``
    (see ``from_env``); ``replace`` returns a copy with some fields changed.
    """

    endpoint_url: str | None = None
    """S3-compatible endpoint, e.g. ``http://127.0.0.1:8333``. None: ``AWS_ENDPOINT_URL_S3``,
    else ``AWS_ENDPOINT_URL``, else AWS itself."""

    region: str | None = None
    """S3 region used for signing. None: the AWS configuration (``AWS_REGION``,
    ``AWS_DEFAULT_REGION``, config file), else ``us-east-1``."""

    anon: bool = False
    """Send unsigned S3 requests (public buckets); no credentials are looked up."""

    max_concurrency: int = 64
    """Requests in flight at once, per engine and event loop."""

    timeout: float = 60.0
    """Seconds one request attempt may take in all: connecting, headers and body."""

    stall_timeout: float = 20.0
    """Seconds a response may go without delivering a byte before the attempt is abandoned."""

    retries: int = 5
    """Extra attempts after a failed one (5xx, 429, 408, broken or stalled connection)."""

    backoff_base: float = 0.1
    """Seconds before the first retry; doubles with each further retry, with full jitter."""

    backoff_max: float = 5.0
    """Upper bound in seconds on one wait between retries (also caps ``Retry-After``)."""

    presign_expires: int = 3600
    """Seconds a presigned S3 URL is valid for."""

    presign_margin: float = 300.0
    """Seconds before expiry at which a cached presigned URL is replaced by a fresh one."""

    block_size: int = 1 * MiB
    """Bytes per block of the scanner's remote file (``RemoteFile``); blocks are aligned."""

    block_cache_size: int = 128 * MiB
    """Bytes of blocks one ``RemoteFile`` keeps in its LRU cache."""

    readahead_blocks: int = 0
    """Blocks fetched ahead of a sequential reader of a ``RemoteFile`` (0 disables)."""

    def __post_init__(self) -> None:
        positive = ("max_concurrency", "timeout", "stall_timeout", "presign_expires", "block_size")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"ReadOptions.{name} must be > 0, got {getattr(self, name)!r}")
        non_negative = (
            "retries",
            "backoff_base",
            "backoff_max",
            "presign_margin",
            "block_cache_size",
            "readahead_blocks",
        )
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ValueError(f"ReadOptions.{name} must be >= 0, got {getattr(self, name)!r}")
        if self.presign_margin >= self.presign_expires:
            raise ValueError("ReadOptions.presign_margin must be less than presign_expires")

    def replace(self, **changes: Any) -> ReadOptions:
        """A copy with ``changes`` applied (validated like the constructor)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ReadOptions:
        """Options from ``REFINDEX_*`` variables (e.g. ``REFINDEX_MAX_CONCURRENCY=32``).

        ``overrides`` win over the environment; unset variables keep the defaults.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            raw = environ.get(f"REFINDEX_{field.name.upper()}")
            if raw is not None:
                values[field.name] = _parse(field.name, field.default, raw)
        values.update(overrides)
        return cls(**values)


def _parse(name: str, default: Any, raw: str) -> Any:
    """Convert an environment string to the type of the field's default."""
    variable = f"REFINDEX_{name.upper()}"
    text = raw.strip()
    try:
        if isinstance(default, bool):
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError(text)
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
    except ValueError:
        kind = type(default).__name__
        raise ValueError(f"{variable}={raw!r} is not a valid {kind}") from None
    # Optional strings (endpoint_url, region): empty means "not set".
    return text or None
