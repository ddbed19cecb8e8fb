"""What ``refindex serve`` serves and how: the datasets (a name and a sidecar each, with their
transcoding, Zarr formats and access token) and the server's limits. Frozen values, read from
the command line or a configuration file (TOML or JSON)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from refindex.errors import RefindexError

TRANSCODE_MODES = ("auto", "raw", "gzip", "zstd", "blosc", "off")
"""``off`` serves the stored bytes of every array, whatever its codecs; ``auto`` re-encodes
(with gzip) only arrays whose codecs browsers and viewers cannot decode; ``raw``, ``gzip``,
``zstd`` and ``blosc`` re-encode every array with that codec (``raw``: none)."""

RESERVED_NAMES = frozenset({"healthz", "metrics"})
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_SIDECAR_SUFFIXES = (".refs.json", ".json", ".refs")


class ServeConfigError(RefindexError):
    """A serve configuration (command line or file) names a dataset or option wrongly."""


@dataclass(frozen=True)
class DatasetConfig:
    """One dataset: the sidecar served under ``/name/``."""

    name: str
    sidecar: str
    """Path or URL of the sidecar (native or kerchunk JSON, a combined directory, ...)."""
    transcode: str = "auto"
    """One of ``TRANSCODE_MODES``."""
    zarr_formats: tuple[int, ...] = (2,)
    """Which metadata documents are served: 2 (``.zgroup``, ``.zarray``, ``.zattrs``,
    ``.zmetadata``), 3 (``zarr.json``), or both. Both makes zarr-python warn and pick 3."""
    token: str | None = field(default=None, repr=False)
    """A bearer token this dataset asks for (besides the server's own, if any)."""

    def __post_init__(self) -> None:
        if not _NAME.match(self.name) or self.name in RESERVED_NAMES:
            raise ServeConfigError(
                f"dataset name {self.name!r}: use letters, digits, '.', '_' and '-' (not "
                f"starting with '.' or '-'), and not {', '.join(sorted(RESERVED_NAMES))}")
        if self.transcode not in TRANSCODE_MODES:
            raise ServeConfigError(f"dataset {self.name!r}: transcode {self.transcode!r} is "
                                   f"not one of {', '.join(TRANSCODE_MODES)}")
        if not self.zarr_formats or set(self.zarr_formats) - {2, 3}:
            raise ServeConfigError(f"dataset {self.name!r}: zarr_formats "
                                   f"{list(self.zarr_formats)} must be 2, 3 or both")


@dataclass(frozen=True)
class ServeConfig:
    """The server: its datasets, address and limits (sizes in bytes, times in seconds)."""

    datasets: tuple[DatasetConfig, ...]
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = field(default=None, repr=False)
    """A bearer token every dataset asks for (``Authorization: Bearer ...``)."""
    cors_origins: tuple[str, ...] = ("*",)
    """Origins browsers may read from; ``*`` any (the data is read-only, and a token-protected
    dataset still needs its token). Empty: no CORS headers."""
    max_in_flight: int = 256
    """Requests handled at once; more are answered 503 with Retry-After."""
    transcode_threads: int = max(1, min(8, os.cpu_count() or 1))
    """Threads decoding and re-encoding chunks."""
    transcode_cache_size: int = 256 * 2**20
    """Bytes of re-encoded chunks kept (LRU)."""
    cache_max_age: int = 3600
    """``Cache-Control: max-age`` of data and metadata (a changed source is caught by ETags)."""
    workers: int = 1
    """Processes serving the port (``SO_REUSEPORT``), each with its own engine and caches."""
    readahead: bool = False
    """Whether the engine reads ahead of a client walking an array's chunks in grid order
    (``ReadOptions.readahead_size``). Off: a viewer's burst comes in grid order, and each of
    its requests would wait for megabytes it did not ask for (benchmarks/serve.py)."""
    header_timeout: float = 10.0
    """Seconds a request's line and headers may take to arrive, from their first byte; a
    slower client (slowloris) is disconnected. 0: no limit."""
    max_line_size: int = 8190
    max_field_size: int = 8190
    """Longest request line and header (bytes); longer ones are answered 400/431."""

    def __post_init__(self) -> None:
        names = [d.name for d in self.datasets]
        if not names:
            raise ServeConfigError("no dataset to serve: name at least one sidecar")
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ServeConfigError(f"dataset names used twice: {', '.join(duplicates)} (give "
                                   "each sidecar its own name in the configuration file)")
        if min(self.max_in_flight, self.transcode_threads, self.workers) < 1:
            raise ServeConfigError("max_in_flight, transcode_threads and workers must be at "
                                   "least 1")
        if not self.header_timeout >= 0:
            raise ServeConfigError(f"header_timeout {self.header_timeout!r} must be a number "
                                   "of seconds, 0 or more")

    def dataset(self, name: str) -> DatasetConfig | None:
        return next((d for d in self.datasets if d.name == name), None)


def default_name(sidecar: str) -> str:
    """The name a sidecar is served under: its file (or directory) name without
    ``.refs.json`` / ``.json``."""
    name = sidecar.rstrip("/").rsplit("/", 1)[-1]
    for suffix in _SIDECAR_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def load_config(path: str | os.PathLike, **overrides) -> ServeConfig:
    """The configuration in file ``path`` (TOML, or JSON for ``.json``): server options at
    the top, and a ``datasets`` list (or table by name) of ``{name, sidecar, transcode,
    zarr_formats, token}``; ``overrides`` (not None) win over the file."""
    path = Path(path)
    try:
        text = path.read_text()
        raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (OSError, ValueError) as exc:
        raise ServeConfigError(f"{path}: cannot read the serve configuration: {exc}") from exc
    datasets = raw.pop("datasets", [])
    if isinstance(datasets, dict):
        datasets = [{"name": name, **entry} for name, entry in datasets.items()]
    base = path.parent
    parsed = [_dataset(entry, base, path) for entry in datasets]
    return make_config(parsed, where=str(path), **raw, **_given(overrides))


def make_config(datasets: list[DatasetConfig], where: str = "command line",
                **options) -> ServeConfig:
    """A ServeConfig from ``options`` named as its fields (lists become tuples)."""
    known = {f.name for f in dataclasses.fields(ServeConfig)} - {"datasets"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ServeConfigError(f"{where}: unknown serve options {', '.join(unknown)} (known: "
                               f"{', '.join(sorted(known))})")
    if isinstance(options.get("cors_origins"), list | str):
        origins = options["cors_origins"]
        options["cors_origins"] = (origins,) if isinstance(origins, str) else tuple(origins)
    try:
        return ServeConfig(tuple(datasets), **options)
    except TypeError as exc:
        raise ServeConfigError(f"{where}: {exc}") from exc


def _dataset(entry: dict, base: Path, path: Path) -> DatasetConfig:
    if not isinstance(entry, dict) or "sidecar" not in entry:
        raise ServeConfigError(f"{path}: each dataset needs a 'sidecar' (got {entry!r})")
    entry = dict(entry)
    sidecar = str(entry.pop("sidecar"))
    if "://" not in sidecar and not os.path.isabs(sidecar):
        sidecar = str(base / sidecar)  # relative to the configuration file, not the cwd
    name = entry.pop("name", None) or default_name(sidecar)
    formats = entry.pop("zarr_formats", (2,))
    formats = (formats,) if isinstance(formats, int) else tuple(formats)
    try:
        return DatasetConfig(name, sidecar, zarr_formats=formats, **entry)
    except TypeError as exc:
        raise ServeConfigError(f"{path}: dataset {name!r}: {exc}") from exc


def _given(overrides: dict) -> dict:
    return {k: v for k, v in overrides.items() if v is not None}
