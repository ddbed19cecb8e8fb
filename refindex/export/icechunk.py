"""An Index written into an Icechunk repository: every group and array's Zarr v3 metadata, every
referenced chunk as a virtual reference carrying its source's ETag or last-modified time as
Icechunk's checksum, inline chunks as real chunks, and virtual chunk containers for the
sources' prefixes; one commit on a branch.

References stream into the session in batches of ``IcechunkOptions.batch_size`` chunks (the
table's NumPy columns sliced per batch; Icechunk's bulk call takes one ``VirtualChunkSpec``
per chunk, so a batch's worth of them exists at a time, never the whole table's).

A re-export of a collection grown along one dimension (``refindex combine`` of more members)
writes only the new chunks of each array whose first chunks, by a digest recorded in the
previous commit's metadata, are the ones the branch already holds; every other array is
written anew.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np

from refindex.errors import RefindexError, UnsupportedFeatureError
from refindex.export.digest import table_digest
from refindex.export.sources import (
    botocore_keys,
    container_credentials,
    container_prefixes,
    export_sources,
    virtual_chunk_container,
)
from refindex.export.zarr_v3 import zarr_v3_array
from refindex.index import WHOLE, ArrayNode, Index
from refindex.io.options import ReadOptions

COMMIT_KEY = "refindex"  # commit metadata: {"arrays": {path: {"block": [...], "digest": ...}}}


@dataclass(frozen=True)
class IcechunkOptions:
    """How an export is committed: ``branch`` (made from ``main`` when new), commit
    ``message`` (None: one naming the arrays and chunks), ``batch_size`` chunks per bulk
    call into the session, and ``append``: write only the new chunks of arrays a grown
    collection extends (False: every chunk anew)."""

    branch: str = "main"
    message: str | None = None
    batch_size: int = 100_000
    append: bool = True
    on_unsupported: str = "error"
    """``"error"``: an array with no exact Zarr v3 form (an irregular grid, a codec or type
    zarr-python cannot read as v3) stops the export before anything is written; ``"skip"``:
    it is left out and named in the report's ``skipped``."""

    def __post_init__(self) -> None:
        if self.on_unsupported not in ("error", "skip"):
            raise ValueError(f"on_unsupported must be 'error' or 'skip', not "
                             f"{self.on_unsupported!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if not self.branch:
            raise ValueError("branch must not be empty")


@dataclass(frozen=True)
class IcechunkReport:
    """What an export wrote: the snapshot id, arrays, virtual and inline chunks written,
    arrays appended to (path -> chunks written), arrays left out of the index by its scan,
    arrays skipped here (path -> why; ``on_unsupported="skip"``), seconds."""

    repository: str
    branch: str
    snapshot: str
    arrays: int
    virtual: int
    inline: int
    appended: dict[str, int] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


class IcechunkExportError(RefindexError):
    """Icechunk refused what the export wrote (a reference outside every virtual chunk
    container, a branch that cannot be made, a repository that cannot be opened)."""


def to_icechunk(index: Index, repository: str, options: IcechunkOptions | None = None,
                read_options: ReadOptions | None = None) -> IcechunkReport:
    """Write ``index`` into the Icechunk repository at ``repository`` (a local path or
    ``s3://bucket/prefix``; made when absent) and commit it on ``options.branch``.

    ``read_options`` gives the S3 endpoint, region and anonymity for the repository and for
    sources under ``s3://`` (credentials from botocore's chain)."""
    from zarr.core.sync import sync

    require_icechunk(repository)
    options = options or IcechunkOptions()
    read_options = read_options or ReadOptions.from_env()
    started = time.perf_counter()
    docs, skipped = {}, {}
    for path, node in index.arrays.items():  # refuse before anything is written
        try:
            docs[path] = zarr_v3_array(node, repository)
        except UnsupportedFeatureError as exc:
            if options.on_unsupported == "error":
                raise
            skipped[path] = exc.reason
    sources = export_sources(index.sources, repository)
    prefixes = container_prefixes(sources)
    repo = _open_repository(repository, prefixes, read_options)
    previous = _previous_commit(repo, options.branch)
    if not options.append:
        previous = {}
    session = repo.writable_session(options.branch)
    store = session.store
    writer = _Writer(store, sources, options.batch_size, repository)
    recorded, appended = {}, {}
    for path, attrs in index.groups.items():
        sync(store.set(_key(path, "zarr.json"), _json_buffer(
            {"zarr_format": 3, "node_type": "group", "attributes": attrs})))
    urls = [s.url for s in sources]
    for path, doc in docs.items():
        node = index.arrays[path]
        start = _append_start(store, node, doc, urls, previous.get(path), options.append)
        if start is None:
            if sync(store.exists(_key(path, "zarr.json"))):
                sync(store.delete_dir(path))  # no stale chunk may outlive the new array
            start = (0,) * len(node.chunks.grid)
        else:
            appended[path] = 0
        sync(store.set(_key(path, "zarr.json"), _json_buffer(doc)))
        written = writer.write(path, node, start)
        if path in appended:
            appended[path] = written
        recorded[path] = {"block": list(node.chunks.grid),
                          "digest": table_digest(node.chunks, urls, node.chunks.grid)}
    message = options.message or (f"refindex export: {len(docs)} arrays, "
                                  f"{writer.virtual:,} virtual and {writer.inline:,} inline "
                                  "chunks written")
    snapshot = _commit(session, message, {COMMIT_KEY: {"arrays": recorded}}, repository,
                       options.branch)
    return IcechunkReport(repository, options.branch, snapshot, len(docs), writer.virtual,
                          writer.inline, appended, dict(index.left_out), skipped,
                          time.perf_counter() - started)


def _commit(session, message: str, metadata: dict, repository: str, branch: str) -> str:
    import icechunk

    try:
        return session.commit(message, metadata=metadata)
    except (icechunk.ConflictError, icechunk.IcechunkError) as exc:
        raise IcechunkExportError(f"{repository}: the commit on branch {branch!r} failed (did "
                                  f"another writer commit meanwhile?): {_first_line(exc)}"
                                  ) from None


def require_icechunk(where: str) -> None:
    """Raise a RefindexError naming the extra to install when icechunk is missing."""
    try:
        import icechunk  # noqa: F401
    except ImportError as exc:
        raise IcechunkExportError(f"{where}: exporting to Icechunk needs the icechunk "
                                  f"package: pip install 'refindex[icechunk]' ({exc})") from None


def open_icechunk(repository: str, read_options: ReadOptions | None = None):
    """The ``icechunk.Repository`` at ``repository``, its virtual chunk containers
    authorized (S3 credentials from botocore's chain) — to read an export back."""
    import icechunk

    read_options = read_options or ReadOptions.from_env()
    storage = repository_storage(repository, read_options)
    config = icechunk.Repository.fetch_config(storage)
    prefixes = sorted((config.virtual_chunk_containers or {}) if config else {})
    return icechunk.Repository.open(
        storage, authorize_virtual_chunk_access=container_credentials(prefixes, read_options))


def repository_storage(repository: str, read_options: ReadOptions):
    """The Icechunk ``Storage`` of a local path or ``s3://bucket/prefix``."""
    import icechunk

    from refindex.io.s3 import endpoint_url

    if "://" not in repository or repository.startswith("file://"):
        return icechunk.local_filesystem_storage(
            os.path.abspath(repository.removeprefix("file://")))
    parts = urlsplit(repository)
    if parts.scheme != "s3":
        raise IcechunkExportError(f"{repository}: an Icechunk repository is a local path or "
                                  "an s3:// prefix")
    endpoint = endpoint_url(read_options)
    if read_options.anon:
        credentials = {"anonymous": True}
    else:
        credentials = botocore_keys() or {"from_env": True}
    return icechunk.s3_storage(
        bucket=parts.netloc, prefix=parts.path.strip("/") or None,
        region=read_options.region or "us-east-1", endpoint_url=endpoint,
        allow_http=bool(endpoint and endpoint.startswith("http:")),
        force_path_style=bool(endpoint), **credentials)


def _open_repository(repository: str, prefixes: list[str], read_options: ReadOptions):
    import icechunk

    storage = repository_storage(repository, read_options)
    config = icechunk.RepositoryConfig.default()
    for prefix in prefixes:
        try:
            config.set_virtual_chunk_container(virtual_chunk_container(prefix, read_options))
        except ValueError as exc:  # e.g. a source directly in "/": no file:// container
            raise IcechunkExportError(f"{repository}: no Icechunk virtual chunk container can "
                                      f"hold sources under {prefix}: {exc}") from None
    try:
        if not icechunk.Repository.exists(storage):
            repo = icechunk.Repository.create(storage, config)
        else:
            known = icechunk.Repository.fetch_config(storage)
            held = set((known.virtual_chunk_containers or {}) if known else ())
            repo = icechunk.Repository.open(storage, config)
            if set(prefixes) - held:
                repo.save_config()
            prefixes = sorted(held | set(prefixes))
        repo = icechunk.Repository.open(
            storage, authorize_virtual_chunk_access=container_credentials(prefixes,
                                                                          read_options))
    except icechunk.IcechunkError as exc:
        raise IcechunkExportError(f"{repository}: cannot open or create the Icechunk "
                                  f"repository: {_first_line(exc)}") from None
    return repo


def _previous_commit(repo, branch: str) -> dict:
    """What the branch's last commit recorded per array, or nothing (a new branch is made
    from ``main``)."""
    if branch not in repo.list_branches():
        repo.create_branch(branch, repo.lookup_branch("main"))
    tip = next(iter(repo.ancestry(branch=branch)))
    recorded = (tip.metadata or {}).get(COMMIT_KEY) or {}
    return recorded.get("arrays") or {}


def _append_start(store, node: ArrayNode, doc: dict, urls: list[str], previous: dict | None,
                  append: bool) -> tuple[int, ...] | None:
    """The chunk coordinates from which ``node`` still has to be written when the branch
    holds its first chunks already (grown along one axis), else None."""
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    if not append or not previous:
        return None
    held = sync(store.get(_key(node.path, "zarr.json"), default_buffer_prototype()))
    if held is None:
        return None
    old = json.loads(held.to_bytes())
    grown = [a for a, (m, n) in enumerate(zip(old.get("shape", []), doc["shape"],
                                              strict=False)) if m != n]
    same = {k: v for k, v in old.items() if k != "shape"} == {
        k: v for k, v in json.loads(json.dumps(doc)).items() if k != "shape"}
    if not same or len(grown) != 1 or len(old["shape"]) != len(doc["shape"]):
        return None
    axis = grown[0]
    block = list(previous.get("block") or [])
    grid = node.chunks.grid
    if (len(block) != len(grid) or old["shape"][axis] > doc["shape"][axis]
            or any(b != g for a, (b, g) in enumerate(zip(block, grid, strict=True))
                   if a != axis) or block[axis] > grid[axis]):
        return None
    if table_digest(node.chunks, urls, tuple(block)) != previous.get("digest"):
        return None
    start = [0] * len(grid)
    start[axis] = block[axis]
    return tuple(start)


class _Writer:
    """Writes chunk tables into a session's store, batch by batch."""

    def __init__(self, store, sources, batch_size: int, where: str) -> None:
        self.store, self.batch_size, self.where = store, batch_size, where
        self.urls = np.array([s.url for s in sources] + [None], dtype=object)
        self.etags = np.array([s.etag for s in sources] + [None], dtype=object)
        self.modified = np.array([s.modified for s in sources] + [None], dtype=object)
        self.sizes = np.array([-1 if s.size is None else s.size for s in sources] + [-1],
                              dtype=np.int64)
        self.virtual = self.inline = 0

    def write(self, path: str, node: ArrayNode, start: tuple[int, ...]) -> int:
        """Write the chunks of ``node`` at grid coordinates ``>= start`` on every axis;
        returns how many."""
        table = node.chunks
        grid = table.grid
        written = 0
        for lo in range(0, len(table), self.batch_size):
            hi = min(lo + self.batch_size, len(table))
            source, offset, length = table.columns(lo, hi)
            coords = np.unravel_index(np.arange(lo, hi), grid) if grid else ()
            keep = np.ones(hi - lo, dtype=bool)
            for axis, first in enumerate(start):
                if first:
                    keep &= coords[axis] >= first
            written += self._virtual(path, node, source, offset, length, coords, keep)
        for flat in sorted(table.inline):
            at = table.coords(flat)
            if all(c >= s for c, s in zip(at, start, strict=True)):
                self._inline(path, at, table.inline[flat])
                written += 1
        return written

    def _virtual(self, path, node, source, offset, length, coords, keep) -> int:
        import icechunk

        rows = np.flatnonzero(keep & (source >= 0))
        if not len(rows):
            return 0
        ids = source[rows]
        lengths = length[rows]
        whole = lengths == WHOLE
        if whole.any():
            sizes = self.sizes[ids[whole]]
            if (sizes < 0).any():
                bad = self.urls[ids[whole][sizes < 0][0]]
                raise IcechunkExportError(f"{self.where}: array /{node.path}: a reference to "
                                          f"the whole of {bad}, whose size is not recorded")
            lengths = lengths.copy()
            lengths[whole] = sizes
        index = (np.stack([c[rows] for c in coords], axis=1).tolist() if coords
                 else [[]] * len(rows))
        specs = list(map(icechunk.VirtualChunkSpec, index, self.urls[ids].tolist(),
                         offset[rows].tolist(), lengths.tolist(), self.etags[ids].tolist(),
                         self.modified[ids].tolist()))
        failed = self.store.set_virtual_refs(path, specs, validate_containers=True)
        if failed:
            raise IcechunkExportError(f"{self.where}: array /{node.path}: Icechunk refused "
                                      f"the references of {len(failed)} chunks (first "
                                      f"{failed[0]}): no virtual chunk container holds their "
                                      "sources")
        self.virtual += len(specs)
        return len(specs)

    def _inline(self, path: str, coords: tuple[int, ...], data: bytes) -> None:
        from zarr.core.buffer import default_buffer_prototype
        from zarr.core.sync import sync

        name = "c/" + "/".join(map(str, coords)) if coords else "c"
        sync(self.store.set(_key(path, name), default_buffer_prototype().buffer.from_bytes(
            data)))
        self.inline += 1


def _key(path: str, name: str) -> str:
    return f"{path}/{name}" if path else name


def _json_buffer(doc: dict):
    from zarr.core.buffer import default_buffer_prototype

    return default_buffer_prototype().buffer.from_bytes(json.dumps(doc).encode())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return next((line.strip(" x|") for line in text.splitlines() if line.strip(" x|")), text)

