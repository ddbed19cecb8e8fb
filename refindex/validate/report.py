"""What validation finds: a status per source, the deep reads per array, and the report."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from refindex.index import Source
from refindex.io import ObjectInfo

DEFAULT_SAMPLE = 4
"""Chunks per array that ``deep`` reads: the first and the last present chunk, and random ones."""


class SourceStatus(StrEnum):
    """What checking one source found."""

    OK = "ok"
    """Size and ETag (or, without one, last-modified) as the sidecar recorded them."""
    UNVERIFIED = "unverified"
    """The source exists (with the recorded size, if one was recorded), but there is no ETag
    or last-modified on both sides to compare: it may have changed in place."""
    MISSING = "missing"
    """The source does not exist any more (HTTP 404 or 410, no such file)."""
    RESIZED = "resized"
    """The source's size differs from the recorded one."""
    CHANGED = "changed"
    """Same size, but the ETag or last-modified time differs: another object."""
    UNREACHABLE = "unreachable"
    """The source could not be asked (network, access denied, no credentials, retries)."""
    REFUSED = "refused"
    """The source policy does not allow reading this source (see ``ReadOptions``)."""


MISMATCHES = frozenset({SourceStatus.MISSING, SourceStatus.RESIZED, SourceStatus.CHANGED})
"""Statuses that mean the sidecar no longer describes the source."""
UNCHECKED = frozenset({SourceStatus.UNREACHABLE, SourceStatus.REFUSED})
"""Statuses that mean the source could not be checked."""


@dataclass(frozen=True)
class SourceCheck:
    """One source as the sidecar recorded it, what it is now (None when it could not be
    asked), the verdict and what it rests on."""

    source: Source
    status: SourceStatus
    found: ObjectInfo | None = None
    detail: str = ""


@dataclass(frozen=True)
class ChunkFailure:
    """A sampled chunk that could not be read or decoded, and why."""

    array: str
    key: str
    error: str


@dataclass(frozen=True)
class ArrayCheck:
    """The deep check of one array: the chunk keys read and decoded (``read``), the sampled
    chunks not read because their source failed its check (``skipped``), and the failures."""

    path: str
    read: tuple[str, ...]
    skipped: int
    failures: tuple[ChunkFailure, ...]


@dataclass(frozen=True)
class ValidationReport:
    """What :func:`refindex.validate` found; ``arrays`` is None unless it ran ``deep``."""

    sidecar: str
    sources: tuple[SourceCheck, ...]
    arrays: tuple[ArrayCheck, ...] | None = None
    sample: int = DEFAULT_SAMPLE
    seed: int = 0

    @property
    def mismatched(self) -> bool:
        """True if a source is missing, resized or changed, or a sampled chunk failed."""
        return (any(check.status in MISMATCHES for check in self.sources)
                or bool(self.chunk_failures))

    @property
    def unchecked(self) -> bool:
        """True if a source could not be checked (unreachable, or refused by the policy)."""
        return any(check.status in UNCHECKED for check in self.sources)

    @property
    def ok(self) -> bool:
        """True if every source was checked and none differs (unverified ones included)."""
        return not self.mismatched and not self.unchecked

    @property
    def chunk_failures(self) -> list[ChunkFailure]:
        return [failure for array in self.arrays or () for failure in array.failures]

    def counts(self) -> dict[str, int]:
        """Sources per status, in the order of :class:`SourceStatus`."""
        counts = dict.fromkeys(SourceStatus, 0)
        for check in self.sources:
            counts[check.status] += 1
        return {str(status): count for status, count in counts.items() if count}

    def to_dict(self) -> dict:
        """The report as plain JSON-ready data (what ``refindex validate --json`` prints)."""
        return {
            "sidecar": self.sidecar,
            "ok": self.ok,
            "mismatched": self.mismatched,
            "unchecked": self.unchecked,
            "counts": self.counts(),
            "sources": [_check_dict(check) for check in self.sources],
            "deep": None if self.arrays is None else {
                "sample": self.sample,
                "seed": self.seed,
                "chunks_read": sum(len(array.read) for array in self.arrays),
                "chunks_failed": len(self.chunk_failures),
                "arrays": [_array_dict(array) for array in self.arrays],
            },
        }


def _check_dict(check: SourceCheck) -> dict:
    recorded, found = check.source, check.found
    return {
        "url": recorded.url,
        "status": str(check.status),
        "detail": check.detail,
        "recorded": {"size": recorded.size, "etag": recorded.etag,
                     "last_modified": recorded.last_modified},
        "found": None if found is None else {
            "size": found.size, "etag": found.etag, "last_modified": found.last_modified},
    }


def _array_dict(array: ArrayCheck) -> dict:
    return {"path": array.path, "read": list(array.read), "skipped": array.skipped,
            "failures": [{"key": f.key, "error": f.error} for f in array.failures]}
