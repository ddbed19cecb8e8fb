"""A collection on disk: a directory holding a sidecar per member and what was scanned.

```
DIR/collection.json     the members (URL, size, ETag, last-modified, sidecar file), the
                        failures, the sources asked for and the combine options
DIR/collection.log      what finished since collection.json was written (JSON lines)
DIR/members/*.json      one native sidecar per member
DIR/index.json, chunks/ the combined dataset (a native directory sidecar), when combined
```

Each member's sidecar is written (atomically) as soon as its scan finishes, and a line says so
in ``collection.log``; ``collection.json`` is written at the end of a run. A run that was
interrupted is resumed from both: members whose sidecar exists with the identity recorded
are not scanned again. The directory opens as the combined dataset once it is combined.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from refindex.errors import SidecarError
from refindex.index import Source

MANIFEST = "collection.json"
LOG = "collection.log"
MEMBERS = "members"
MARKER = "refindex_collection"
VERSION = "1.0"


@dataclass(frozen=True)
class MemberRecord:
    """A scanned member: its source's identity, its sidecar (relative to the directory), and
    how much it holds."""

    url: str
    sidecar: str
    size: int | None = None
    etag: str | None = None
    last_modified: str | None = None
    arrays: int = 0
    chunks: int = 0

    @property
    def source(self) -> Source:
        return Source(self.url, self.size, self.etag, self.last_modified)


@dataclass(frozen=True)
class FailedMember:
    """A member that could not be scanned, and why."""

    url: str
    error: str


@dataclass
class CollectionState:
    """What a collection directory holds: members and failures by URL, and settings."""

    members: dict[str, MemberRecord]
    failed: dict[str, FailedMember]
    settings: dict


def is_collection(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a collection directory."""
    path = Path(path)
    return (path / MANIFEST).is_file() or (path / LOG).is_file()


def same_identity(recorded: Source, listed: Source) -> bool:
    """Whether a listed object is the one a member was scanned from: the same URL and size,
    and the same ETag (else the same last-modified time); without either, never (an object
    that cannot be told apart from a rewritten one is scanned again)."""
    if recorded.url != listed.url or recorded.size is None or recorded.size != listed.size:
        return False
    if recorded.etag and listed.etag:
        return recorded.etag.strip('"') == listed.etag.strip('"')
    if recorded.last_modified and listed.last_modified:
        return recorded.last_modified == listed.last_modified
    return False


class CollectionDirectory:
    """Reads and writes one collection directory."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def member_file(self, url: str) -> str:
        """The member sidecar's name for ``url``, relative to the directory: readable, and
        unique and safe whatever the URL (its file name and a hash of it)."""
        tail = url.rstrip("/").rsplit("/", 1)[-1]
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", tail).strip("._")[:60] or "member"
        digest = hashlib.sha1(url.encode()).hexdigest()[:12]
        return f"{MEMBERS}/{slug}-{digest}.json"

    def load(self) -> CollectionState:
        """The state: ``collection.json``, then what ``collection.log`` adds to it; members
        whose sidecar is missing are left out."""
        members: dict[str, MemberRecord] = {}
        failed: dict[str, FailedMember] = {}
        settings: dict = {}
        manifest = self.path / MANIFEST
        if manifest.is_file():
            document = _read_json(manifest)
            if MARKER not in document:
                raise SidecarError(f"{manifest}: not a refindex collection (no {MARKER!r})")
            settings = document.get("settings", {})
            for entry in document.get("members", []):
                members[entry["url"]] = MemberRecord(**entry)
            for entry in document.get("failed", []):
                failed[entry["url"]] = FailedMember(**entry)
        for event in self._log_events():
            if "member" in event:
                record = MemberRecord(**event["member"])
                members[record.url] = record
                failed.pop(record.url, None)
            elif "failed" in event:
                failure = FailedMember(**event["failed"])
                failed[failure.url] = failure
                members.pop(failure.url, None)
            elif "removed" in event:
                members.pop(event["removed"], None)
                failed.pop(event["removed"], None)
        members = {url: r for url, r in members.items() if (self.path / r.sidecar).is_file()}
        return CollectionState(members, failed, settings)

    def _log_events(self) -> list[dict]:
        log = self.path / LOG
        if not log.is_file():
            return []
        events = []
        for line in log.read_text(encoding="utf-8").splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                break  # the torn last line of an interrupted run
        return events

    def write_member(self, source: Source, sidecar: bytes, arrays: int,
                     chunks: int) -> MemberRecord:
        """Store a member's sidecar and log it; returns its record."""
        name = self.member_file(source.url)
        _write_atomically(self.path / name, sidecar)
        record = MemberRecord(source.url, name, source.size, source.etag, source.last_modified,
                              arrays, chunks)
        self._log({"member": asdict(record)})
        return record

    def write_failure(self, failure: FailedMember) -> None:
        self._log({"failed": asdict(failure)})

    def remove_member(self, record: MemberRecord) -> None:
        """Forget a member whose object is gone, and delete its sidecar."""
        (self.path / record.sidecar).unlink(missing_ok=True)
        self._log({"removed": record.url})

    def _log(self, event: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / LOG, "a", encoding="utf-8") as log:
            log.write(json.dumps(event, ensure_ascii=False) + "\n")
            log.flush()

    def write_manifest(self, members: list[MemberRecord], failed: list[FailedMember],
                       settings: dict) -> None:
        """Write ``collection.json`` (members in this order) and start a new log."""
        document = {MARKER: VERSION, "settings": settings,
                    "members": [_compact(asdict(r)) for r in members],
                    "failed": [asdict(f) for f in failed]}
        _write_atomically(self.path / MANIFEST,
                          json.dumps(document, indent=1, ensure_ascii=False).encode())
        (self.path / LOG).unlink(missing_ok=True)

    def member_sidecars(self, state: CollectionState | None = None) -> list[Path]:
        """The member sidecars, in the order of the manifest."""
        state = state or self.load()
        return [self.path / record.sidecar for record in state.members.values()]

    def replace_combined(self, write) -> None:
        """Write the combined dataset with ``write(directory)`` next to the members, then swap
        it in: ``index.json`` is replaced last, so a reader sees the old or the new one."""
        from refindex.sidecar.native import INDEX_FILE, PARTS_FOLDER

        staging = Path(tempfile.mkdtemp(prefix=".combined-", dir=self.path))
        try:
            write(staging)
            old_parts = self.path / f"{PARTS_FOLDER}.old"
            shutil.rmtree(old_parts, ignore_errors=True)
            if (self.path / PARTS_FOLDER).exists():
                os.replace(self.path / PARTS_FOLDER, old_parts)
            if (staging / PARTS_FOLDER).exists():
                os.replace(staging / PARTS_FOLDER, self.path / PARTS_FOLDER)
            os.replace(staging / INDEX_FILE, self.path / INDEX_FILE)
            shutil.rmtree(old_parts, ignore_errors=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _compact(entry: dict) -> dict:
    return {k: v for k, v in entry.items() if v is not None}


def _read_json(path: Path) -> dict:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise SidecarError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(document, dict):
        raise SidecarError(f"{path}: expected a JSON object")
    return document


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
