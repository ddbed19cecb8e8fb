"""pack: a Zarr directory store (v2 or v3) -> a few large tar files of about a target size,
and the sidecar that reads them as the store; with ``upload_to``, each tar is uploaded while
it is packed (each upload part as soon as its bytes are written) and the sidecar names the
uploaded objects.

Resumable: a rerun into the same directory keeps every part whose files did not change
(same keys, sizes and mtimes) and whose tar still has the size and SHA-256 recorded, and
every upload whose object still has the size and ETag recorded.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from refindex.errors import RefindexError
from refindex.index import Index, Source
from refindex.pack.growing import GrowingFile
from refindex.pack.journal import Journal, PartRecord
from refindex.pack.layout import PackLayout, PartPlan
from refindex.pack.packed_index import build_index
from refindex.pack.tar_part import PARTIAL, file_sha256, planned_size, read_offsets, write_part
from refindex.pack.uploads import PartUploads
from refindex.pack.zarr_tree import StoreTree, read_store
from refindex.sidecar import write_index
from refindex.upload import PartUrlProvider, UploadCounters, UploadOptions, UploadProgress
from refindex.upload.options import GiB

FORMATS = ("tar",)


@dataclass(frozen=True)
class PackOptions:
    """How ``pack`` cuts, names, uploads and indexes a store."""

    target_size: int = 2 * GiB
    """Bytes of tar per part, about: members are added until the next would pass it."""

    format: str = "tar"
    """Archive format of the parts: ``tar`` (uncompressed POSIX tar)."""

    name: str | None = None
    """Stem of the files written: ``<name>-00000.tar``, ``<name>.refs.json``,
    ``<name>.pack.json``; default: the store's folder name without ``.zarr``."""

    upload_to: str | PartUrlProvider | None = None
    """``s3://bucket/prefix/``, or a part URL provider (``refindex.upload.PartUrlProvider``,
    asked for each part): upload each part while it is packed, and name the uploaded
    objects in the sidecar. None: the sidecar names the local tar files."""

    upload: UploadOptions = field(default_factory=UploadOptions)
    """How parts are uploaded (part size, concurrency, retries, endpoint, ...)."""

    sidecar: str | os.PathLike | None = None
    """Where the sidecar goes; default ``<output>/<name>.refs.json``."""

    layout: str = "auto"
    """Layout of the native sidecar: ``file``, ``directory`` or ``auto``."""

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, not {self.format!r}")
        if self.target_size <= 0:
            raise ValueError(f"target_size must be > 0 bytes, got {self.target_size}")


class PackProgress(UploadProgress):
    """Told what ``pack`` does; subclass and override (every method does nothing here).
    ``packed`` is called from the packing thread, the upload methods from the I/O thread."""

    def planned(self, files: int, data_bytes: int, parts: int) -> None:
        """``files`` files of ``data_bytes`` bytes are to be packed into ``parts`` parts."""

    def packed(self, files: int, nbytes: int) -> None:
        """``files`` more files of ``nbytes`` bytes are in their part (or kept from a former
        run)."""

    def part_ready(self, name: str, size: int, kept: bool) -> None:
        """Part ``name`` of ``size`` bytes is complete: written now, or ``kept``."""


@dataclass(frozen=True)
class PackedPart:
    """One part: its file, size (bytes), member count, whether a former run's file was kept,
    and the source the sidecar names for it (the local file, or the uploaded object)."""

    name: str
    path: Path
    size: int
    members: int
    kept: bool
    source: Source


@dataclass(frozen=True)
class PackResult:
    """What ``pack`` made: the sidecar, its index, the parts, and what it took."""

    sidecar: Path
    index: Index
    parts: list[PackedPart]
    files: int
    chunks: int
    data_bytes: int
    seconds: float
    upload: UploadCounters | None = None
    skipped: list[str] = field(default_factory=list)
    """Files packed but left out of the index, and why (see ``build_index``)."""


def pack(store: str | os.PathLike, output: str | os.PathLike,
         options: PackOptions | None = None, progress: PackProgress | None = None) -> PackResult:
    """Pack the Zarr directory store (v2 or v3) at ``store`` into tar parts in the folder
    ``output`` and write their sidecar (native format); see :class:`PackOptions`."""
    options = options or PackOptions()
    progress = progress or PackProgress()
    started = time.perf_counter()
    tree = read_store(store)
    stem = options.name or _stem(tree.root)
    out = Path(output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    layout = PackLayout(tree, options.target_size, stem)
    journal = Journal.load(out / f"{stem}.pack.json", tree.root)
    _forget_stale(out, journal, layout)
    progress.planned(layout.count, layout.data_bytes, len(layout.parts))
    uploads = None
    if options.upload_to is not None:
        uploads = PartUploads(options.upload_to, options.upload, journal, progress)
    try:
        made = [_make_part(out, tree, layout, part, journal, progress, uploads)
                for part in layout.parts]
        sources = uploads.wait() if uploads else {}
    except BaseException:
        if uploads is not None:
            uploads.cancel()
        raise
    finally:
        if uploads is not None:
            uploads.close()
    parts = [PackedPart(part.name, out / part.name, record.size, len(part), kept,
                        sources.get(part.name) or Source(str(out / part.name), record.size))
             for part, (_, record, kept) in zip(layout.parts, made, strict=True)]
    index, skipped = build_index(tree, layout, [offsets for offsets, _, _ in made],
                                 [part.path for part in parts], [part.source for part in parts])
    sidecar = Path(options.sidecar) if options.sidecar else out / f"{stem}.refs.json"
    _remove(sidecar)
    write_index(index, sidecar, "native", options.layout)
    return PackResult(sidecar, index, parts, layout.count, tree.chunk_count(),
                      layout.data_bytes, time.perf_counter() - started,
                      uploads.uploader.counters if uploads else None, skipped)


def _make_part(out: Path, tree: StoreTree, layout: PackLayout, part: PartPlan,
               journal: Journal, progress: PackProgress,
               uploads: PartUploads | None) -> tuple[np.ndarray, PartRecord, bool]:
    """The part's member offsets and record, and whether a former run's file was kept; with
    ``uploads``, a kept part's upload starts now (unless a former run's still stands), a
    written part's as it is written."""
    path = out / part.name
    record = journal.get(part.name)
    if record is not None and record.fingerprint == part.fingerprint and _intact(path, record):
        offsets = read_offsets(path, layout.members(part.start, part.stop), len(part))
        if offsets is not None:
            progress.packed(len(part), layout.data_bytes_in(part.start, part.stop))
            progress.part_ready(part.name, record.size, kept=True)
            if uploads is not None:
                uploads.submit(part.name, path, record)
            return offsets, record, True
    growing = None
    if uploads is not None:
        growing = GrowingFile(path.with_name(path.name + PARTIAL),
                              planned_size(layout.members(part.start, part.stop)))
        uploads.stream(part.name, path, growing)
    try:
        written = write_part(path, tree.root, layout.members(part.start, part.stop), len(part),
                             progress.packed,
                             growing.advanced if growing is not None else None)
        if growing is not None and written.size != growing.size:
            raise RefindexError(f"{path}: {written.size:,} bytes written, {growing.size:,} "
                                "planned")
    except BaseException as error:
        if growing is not None:
            growing.failed(error)
        raise
    record = PartRecord(part.fingerprint, written.size, written.sha256)
    journal.written(part.name, record)
    if growing is not None:
        growing.finished()
    progress.part_ready(part.name, written.size, kept=False)
    return written.offsets, record, False


def _intact(path: Path, record: PartRecord) -> bool:
    try:
        return path.stat().st_size == record.size and file_sha256(path) == record.sha256
    except OSError:
        return False


def _forget_stale(out: Path, journal: Journal, layout: PackLayout) -> None:
    """Remove the parts a former run made that this layout has no more, and torn parts."""
    wanted = {part.name for part in layout.parts}
    stale = [name for name in journal.parts if name not in wanted]
    for name in stale + [part.name + PARTIAL for part in layout.parts]:
        (out / name).unlink(missing_ok=True)
    if stale:
        journal.forget(stale)


def _stem(root: Path) -> str:
    return root.name.removesuffix(".zarr") or "store"


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
