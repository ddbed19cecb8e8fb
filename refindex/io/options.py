"""ReadOptions: every knob of reading, in one frozen, documented, picklable object."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from refindex.io.retry import RetryPolicy

MiB = 1024 * 1024
AUTO = -1  # zarr_concurrency chosen from the arrays' chunk sizes

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


HOST_CLASSES = ("public", "private", "any")  # each allows the hosts of those before it too


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

    max_per_host: int = 32
    """Requests in flight at once to one host (``scheme://host:port``), shared by every
    engine of the process on one event loop; lowered automatically while the host throttles
    (429, 503 SlowDown) and raised back as its answers succeed."""

    timeout: float = 60.0
    """Seconds one request attempt may take to connect and receive the response headers.
    The body has no total limit: it is bounded by ``stall_timeout`` and ``deadline``."""

    stall_timeout: float = 20.0
    """Seconds a response may go without delivering a byte before the attempt is abandoned
    and retried (a slow response that keeps delivering bytes is never cut off)."""

    deadline: float = 300.0
    """Seconds one read (a range GET, a HEAD or a page of a listing) may take from its first
    attempt to its last byte, retries and waits included; then it fails with a
    ``FetchError``."""

    retries: int = 5
    """Extra attempts after a failed one (5xx, 429, 408, broken, truncated or stalled
    response)."""

    backoff_base: float = 0.1
    """Seconds before the first retry; doubles with each further retry, with full jitter."""

    backoff_max: float = 5.0
    """Upper bound in seconds on one backoff wait between retries. A server's
    ``Retry-After`` is honoured even when longer, unless it would pass the ``deadline``."""

    presign_expires: int = 3600
    """Seconds a presigned S3 URL is valid for."""

    presign_margin: float = 300.0
    """Seconds before expiry at which a resolved URL (presigned, or found through a redirect)
    is replaced by a fresh one; at most half of the time it has left."""

    # Resolving: redirects, logins, archive-specific resolvers.
    bearer_token: str | None = dataclasses.field(default=None, repr=False)
    """Token sent as ``Authorization: Bearer`` to the host of each HTTP(S) source (not to
    hosts it redirects to, never with a presigned URL). HTTP Basic credentials come from
    ``~/.netrc``, or the file the ``NETRC`` environment variable names."""

    resolve_ttl: float = 3600.0
    """Seconds a redirect's target is reused when neither its URL (a signature's expiry) nor
    the redirect (``Cache-Control: max-age``, ``Expires``) says how long it is valid."""

    max_redirects: int = 10
    """Redirects followed from one source before giving up."""

    resolvers: tuple = ()
    """Archive-specific resolvers, tried before the built-in ones: ``async (url, context) ->
    ResolvedUrl | None`` callables or their ``"module:function"`` names (see
    ``refindex.io.resolver``); those of the ``refindex.resolvers`` entry-point group follow.
    Names also travel to Dask workers; callables must be picklable to do so."""

    # The source policy (refindex.io.policy).
    allowed_sources: tuple[str, ...] = ()
    """URL prefixes every source must start with (``("s3://my-bucket/",)``; local prefixes
    as paths or ``file://``). Empty: ``s3://``, ``http(s)://`` and (see ``local_sources``)
    local files. Link-local and cloud-metadata addresses are refused unless a prefix names
    that host (``"http://169.254.169.254/"``). Comma-separated in the environment."""

    local_sources: bool = True
    """Whether sources may be local files when ``allowed_sources`` is empty; ``open_store``
    turns it off for a sidecar that is not itself a local file."""

    source_hosts: str | None = None
    """Which hosts HTTP(S) sources may be on: ``"public"`` (public addresses only),
    ``"private"`` (private networks too: 10/8, 172.16/12, 192.168/16, fc00::/7, 100.64/10) or
    ``"any"`` (loopback too). None: ``open_store`` takes the class of the host a remote
    sidecar came from (a sidecar from a public host names public sources only), and
    ``"any"`` for local sidecars and everything else. Host names are checked by the address
    they resolve to, before connecting; hosts that ``allowed_sources`` or ``endpoint_url``
    name are always allowed."""

    block_size: int = 1 * MiB
    """Bytes per block of the scanner's remote file (``RemoteFile``); blocks are aligned."""

    block_cache_size: int = 128 * MiB
    """Bytes of blocks one ``RemoteFile`` keeps in its LRU cache."""

    readahead_blocks: int = 0
    """Blocks fetched ahead of a sequential reader of a ``RemoteFile`` (0 disables)."""

    # Planning and caching. The first planning figures are starting points, to be tuned from
    # benchmarks/read.py: a gap of 1 MiB costs about 8 ms at 1 Gbit/s, less than one round
    # trip to object storage, so reading it beats a second request.
    max_gap: int = 1 * MiB
    """Bytes of unrequested gap between two ranges of one source up to which they are merged
    into one request (0 merges adjacent ranges only). Chosen with benchmarks/read.py (climate
    file, 50 ms, medians of 3): 0 read a plane in 19 requests and a 400-chunk region in 204
    (0.54 s); 64 KiB to 4 MiB in 2 and 100 (0.36-0.38 s). Up to 1 MiB of gap costs at most
    8 ms at 1 Gbit/s, less than the round trip it saves."""

    max_request: int = 4 * MiB
    """Bytes one merged request may span at most; a single range longer than this is read
    on its own (split in parts if longer than ``split_size``). Chosen with
    benchmarks/read.py (1 GiB volume, 680 MB stored, full read, 20 ms, 1 Gbit/s, medians of
    3): 2 MiB 7.74 s, 4 MiB 7.57 s, 16 MiB 8.84 s; physical limit 5.44 s. Smaller requests
    let decoding start while the rest is in flight; below 4 MiB, request count costs more."""

    min_request: int = 4 * MiB
    """Bytes below which merged requests are not made smaller: a batch of fewer bytes than
    ``max_per_host`` × ``max_request`` is spread over up to ``max_per_host`` requests of at
    least this size. Equal to ``max_request`` by default (no spreading): on benchmarks/read.py
    (volume region, 8 chunks of 680 KB, 20 ms, medians of 5) 1 MiB gave 0.14 s in 8 requests,
    4 MiB 0.12 s in 4. Lower it where one connection is much slower than the link (real S3
    serves some 50-100 MB/s per connection), so that a small selection uses several."""

    split_size: int = 32 * MiB
    """Bytes above which one read is split into ``ceil(length / split_size)`` equal parts
    fetched in parallel. Only single ranges longer than this are split (whole objects, very
    large contiguous chunks): merged reads never exceed ``max_request``. None of the
    benchmark's selections has such a range: 32 MiB takes 0.27 s at 1 Gbit/s, so a 20 ms round
    trip costs each part under 8%, while a 100 MB range still uses four connections."""

    cache_size: int = 256 * MiB
    """Bytes of fetched ranges the engine keeps in memory (LRU) to answer repeated reads
    (0 disables)."""

    disk_cache: str | None = None
    """Directory of an on-disk cache of fetched ranges shared by later sessions (None: no
    disk cache). Only ranges of sources with a known ETag or size are stored there."""

    disk_cache_size: int = 4096 * MiB
    """Bytes the on-disk cache may hold; least recently used entries are evicted beyond."""

    decoded_cache_size: int = 128 * MiB
    """Bytes of decoded chunks a store keeps (LRU) for arrays it re-tiles: arrays combined
    from members of uneven lengths, whose chunks zarr reads as regular chunks assembled from
    the stored ones they overlap (two neighbouring regular chunks share a stored chunk,
    decoded once). 0 disables."""

    readahead_size: int = 4 * MiB
    """Bytes of chunks fetched at most per read-ahead when a reader walks an array's chunks
    in grid order; the window grows with the walk but never past the chunks walked so far.
    0 disables; needs the memory cache (``cache_size``)."""

    zarr_concurrency: int = AUTO
    """Chunks zarr asks a store for at once (its ``async.concurrency``, default 10) during
    refindex's own reads through zarr (the xarray backend's arrays, ``refindex read``), and
    what ``refindex.tune_zarr(store)`` sets for the whole process (opt-in); batching merges
    what arrives together, so more at once means fewer, larger requests. Making a store
    never changes zarr's configuration. ``AUTO`` (-1): as many chunks as fit 512 MiB
    decoded, between 64 and 4,096 (4,096 for small chunks: a whole plane of them in one
    batch; 512 for 1 MiB chunks), which bounds the memory of chunks fetched but not yet
    decoded. A value the user chose for zarr is never changed; 0 leaves zarr alone."""

    def __post_init__(self) -> None:
        positive = (
            "max_concurrency",
            "max_per_host",
            "timeout",
            "stall_timeout",
            "deadline",
            "presign_expires",
            "block_size",
            "resolve_ttl",
        )
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
            "max_redirects",
        )
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ValueError(f"ReadOptions.{name} must be >= 0, got {getattr(self, name)!r}")
        if self.source_hosts not in (None, *HOST_CLASSES):
            raise ValueError(f"ReadOptions.source_hosts must be one of {HOST_CLASSES} or None, "
                             f"got {self.source_hosts!r}")
        for name in ("allowed_sources", "resolvers"):
            value = getattr(self, name)
            # Lists from keyword arguments become tuples: options are hashable and frozen.
            single = isinstance(value, str) or callable(value)
            object.__setattr__(self, name, (value,) if single else tuple(value))
        if self.presign_margin >= self.presign_expires:
            raise ValueError("ReadOptions.presign_margin must be less than presign_expires")
        sizes = ("max_request", "min_request", "split_size", "max_gap", "cache_size",
                 "disk_cache_size", "decoded_cache_size", "readahead_size", "zarr_concurrency")
        for name in sizes:
            if name == "zarr_concurrency" and self.zarr_concurrency == AUTO:
                continue
            minimum = 1 if name in ("max_request", "min_request", "split_size") else 0
            if getattr(self, name) < minimum:
                raise ValueError(
                    f"ReadOptions.{name} must be >= {minimum}, got {getattr(self, name)!r}"
                )

    def replace(self, **changes: Any) -> ReadOptions:
        """A copy with ``changes`` applied (validated like the constructor)."""
        return dataclasses.replace(self, **changes)

    @property
    def retry(self) -> RetryPolicy:
        """How each read, HEAD and listing request is retried (``retries``, ``backoff_base``,
        ``backoff_max``, ``deadline``)."""
        return RetryPolicy(self.retries, self.backoff_base, self.backoff_max, self.deadline)

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
        if isinstance(default, tuple):
            return tuple(part.strip() for part in text.split(",") if part.strip())
    except ValueError:
        kind = type(default).__name__
        raise ValueError(f"{variable}={raw!r} is not a valid {kind}") from None
    # Optional strings (endpoint_url, region): empty means "not set".
    return text or None
