"""The files of a Zarr store in a local directory, each a member and a source of its own
(a shard file, or a chunk file of an unsharded store)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from refindex.index import Source
from refindex.scan.zarrstore.members import MemberTable


def list_directory(root: str, url: str | None = None) -> MemberTable:
    """Every file under the directory ``root`` as a member whose key is its path below
    ``root`` (links to files are followed, linked directories are not: no cycle can trap
    the walk). Readers will find each file at ``url`` + ``/`` + key when ``url`` is given
    (the store's URL after upload), else at its local path."""
    table = MemberTable(root)
    base = Path(root)
    for directory, names, files in os.walk(root):
        names.sort()
        for name in sorted(files):
            path = Path(directory, name)
            key = path.relative_to(base).as_posix()
            try:
                status = path.stat()
            except OSError as error:  # a dangling link, or a file removed during the walk
                table.notes.append(f"{key}: cannot be read ({error.strerror})")
                continue
            modified = datetime.fromtimestamp(status.st_mtime, tz=UTC).isoformat()
            readers = f"{url.rstrip('/')}/{key}" if url else str(path)
            source = table.add_source(Source(readers, status.st_size, None, modified), str(path))
            table.add(key, source, 0, status.st_size)
    return table
