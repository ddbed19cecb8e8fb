"""What an earlier run of ``pack`` finished, so that a rerun keeps it: per part, the
fingerprint of the files it holds, its size and SHA-256, and where it was uploaded.

A JSON file next to the parts (``<stem>.pack.json``), replaced atomically after every
change; a journal that is unreadable, of another version or of another store is ignored
(everything is redone) rather than trusted.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path

VERSION = 1
MARKER = "refindex_pack"


@dataclass(frozen=True)
class Uploaded:
    """Where a part was uploaded and what the server said it is."""

    url: str
    size: int
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class PartRecord:
    """A finished part: the ``fingerprint`` of its members, its ``size`` (bytes) and
    ``sha256``, and its upload if it was uploaded since it was written."""

    fingerprint: str
    size: int
    sha256: str
    uploaded: Uploaded | None = None


class Journal:
    """The records of one store's parts in one output directory; thread-safe."""

    def __init__(self, path: Path, store: Path, parts: dict[str, PartRecord] | None = None) -> None:
        self.path = path
        self.store = store
        self.parts = dict(parts or {})
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path, store: Path) -> Journal:
        """The journal at ``path`` if it is one of ``store``; else an empty one."""
        try:
            doc = json.loads(path.read_text())
            if doc.get(MARKER) != VERSION or doc.get("store") != str(store):
                return cls(path, store)
            parts = {name: _record(fields) for name, fields in doc["parts"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return cls(path, store)
        return cls(path, store, parts)

    def get(self, name: str) -> PartRecord | None:
        with self._lock:
            return self.parts.get(name)

    def written(self, name: str, record: PartRecord) -> None:
        """Part ``name`` was (re)written: its old upload, if any, no longer counts."""
        with self._lock:
            self.parts[name] = record
            self._save()

    def uploaded(self, name: str, upload: Uploaded) -> None:
        with self._lock:
            self.parts[name] = replace(self.parts[name], uploaded=upload)
            self._save()

    def forget(self, names: list[str]) -> None:
        with self._lock:
            for name in names:
                self.parts.pop(name, None)
            self._save()

    def _save(self) -> None:
        doc = {MARKER: VERSION, "store": str(self.store),
               "parts": {name: asdict(record) for name, record in self.parts.items()}}
        fresh = self.path.with_name(self.path.name + ".tmp")
        fresh.write_text(json.dumps(doc, indent=1))
        os.replace(fresh, self.path)


def _record(fields: dict) -> PartRecord:
    uploaded = fields.get("uploaded")
    return PartRecord(fields["fingerprint"], int(fields["size"]), fields["sha256"],
                      Uploaded(**uploaded) if uploaded else None)
