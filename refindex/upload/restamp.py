"""Re-stamp a sidecar after an upload: sources that named the local files now name the
uploaded objects, with the size and ETag the server reports (so readers detect a change)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import ujson

from refindex.errors import SidecarError, UploadError
from refindex.index import Index
from refindex.sidecar import load_index, write_index
from refindex.sidecar.location import is_local, local_path
from refindex.sidecar.native import INDEX_FILE, is_native
from refindex.upload.uploader import UploadResult


def restamp(index: Index, uploaded: Iterable[UploadResult]) -> list[str]:
    """Replace each source of ``index`` that is a local file just uploaded by the uploaded
    object; returns the local sources left as they were. A source whose recorded size
    differs from the file's is an UploadError: the sidecar describes another version."""
    by_file = {_real(result.path): result for result in uploaded}
    left = []
    for i, source in enumerate(index.sources):
        if not is_local(source.url):
            continue
        result = by_file.get(_real(local_path(source.url)))
        if result is None:
            left.append(source.url)
            continue
        if source.size is not None and source.size != result.size:
            raise UploadError(f"{source.url}: the sidecar records {source.size:,} bytes, the "
                              f"uploaded file has {result.size:,}; it describes another "
                              "version of the file: scan it again")
        index.sources[i] = result.source
    return left


def restamp_sidecar(sidecar: str | os.PathLike, uploaded: Iterable[UploadResult],
                    output: str | os.PathLike | None = None) -> tuple[Path, list[str]]:
    """Re-stamp the local sidecar file or directory ``sidecar`` and write it to ``output``
    (default: in place, replaced atomically), in the format and layout it had. Returns where
    it was written and the local sources left as they were."""
    sidecar = Path(sidecar)
    format, layout = _format_of(sidecar)
    index = load_index(sidecar)
    for node in index.arrays.values():
        node.chunks.source  # noqa: B018 - decode every part before the files are replaced
    left = restamp(index, uploaded)
    target = Path(output) if output is not None else sidecar
    _write_replacing(index, target, format, layout)
    return target, left


def _format_of(sidecar: Path) -> tuple[str, str]:
    if sidecar.is_dir():
        if not (sidecar / INDEX_FILE).is_file():
            raise SidecarError(f"{sidecar}: a directory, but no native sidecar ({INDEX_FILE}); "
                               "only native and kerchunk JSON sidecars can be re-stamped")
        return "native", "directory"
    try:
        doc = ujson.loads(sidecar.read_bytes())
    except FileNotFoundError:
        raise SidecarError(f"{sidecar}: sidecar not found") from None
    except ValueError as error:
        raise SidecarError(f"{sidecar}: not valid JSON ({error})") from None
    return ("native" if is_native(doc) else "kerchunk"), "file"


def _write_replacing(index: Index, target: Path, format: str, layout: str) -> None:
    """Write next to ``target`` first, then swap it in: a failure leaves the old sidecar."""
    fresh = target.with_name(target.name + ".restamping")
    _remove(fresh)
    write_index(index, fresh, format, layout)
    if target.is_dir():
        stale = target.with_name(target.name + ".replaced")
        _remove(stale)
        target.rename(stale)
        fresh.rename(target)
        _remove(stale)
    else:
        os.replace(fresh, target)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _real(path: str | os.PathLike) -> str:
    return os.path.realpath(os.fspath(path))

