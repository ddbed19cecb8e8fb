"""What the xarray backend claims to open when ``xr.open_dataset`` is given no ``engine=``.

xarray asks its engines in turn (netcdf4, h5netcdf and scipy first, then the others sorted
by name) and takes the first that claims the file. kerchunk's engine claims every name ending
in ``.json`` or ``.parquet``; so refindex registers its engine a second time, as
``"_refindex"`` (sorted before ``"kerchunk"``), claiming only what refindex wrote or names:

* a native sidecar (``"refindex_sidecar"`` leads the document), a file or a directory
  (``index.json``), and a collection directory (``collection.json``);
* a kerchunk JSON sidecar refindex wrote (its ``"refindex"`` provenance key: the first key
  after ``"version"``; older refindex versions wrote it last, so the end is looked at too);
* a kerchunk JSON sidecar named ``*.refs.json`` (refindex's name for sidecars);
* an ``Index`` or a ``ReferenceStore``.

The ``"refindex"`` engine itself claims any reference sidecar (kerchunk's included), for
when kerchunk is not installed.
"""

from __future__ import annotations

import os
import re

from refindex.collection.directory import is_collection
from refindex.index import Index
from refindex.sidecar.native import INDEX_FILE, MARKER
from refindex.store import ReferenceStore

__all__ = ["looks_like_sidecar", "written_by_refindex"]

SNIFF_BYTES = 65536
SUFFIX = ".refs.json"
_SIDECAR_MARKERS = (b'"refindex_sidecar"', b'"refs"', b'".zgroup"', b'/.zarray"', b'".zarray"')
_DIRECTORY_INDEXES = (INDEX_FILE, ".zmetadata")
_NATIVE = re.compile(rb'^\s*\{\s*"' + MARKER.encode() + rb'"\s*:')
_PROVENANCE = re.compile(rb'"refindex"\s*:\s*\{')


def looks_like_sidecar(filename_or_obj) -> bool:
    """Whether ``filename_or_obj`` is a reference sidecar of any writer (kerchunk's too): a
    file or directory looked at, a remote URL by its name."""
    if isinstance(filename_or_obj, Index | ReferenceStore):
        return True
    path = _local_path(filename_or_obj)
    if path is None:
        return _remote_name(filename_or_obj).endswith(SUFFIX)
    if os.path.isdir(path):  # a directory sidecar: native, or kerchunk parquet references
        return any(os.path.isfile(os.path.join(path, name)) for name in _DIRECTORY_INDEXES)
    head, _ = _ends(path)
    return head.lstrip().startswith(b"{") and any(m in head for m in _SIDECAR_MARKERS)


def written_by_refindex(filename_or_obj) -> bool:
    """Whether ``filename_or_obj`` is a sidecar refindex wrote or names (module docstring)."""
    if isinstance(filename_or_obj, Index | ReferenceStore):
        return True
    path = _local_path(filename_or_obj)
    if path is None:
        return _remote_name(filename_or_obj).endswith(SUFFIX)
    if os.path.isdir(path):
        return is_collection(path) or _is_native(os.path.join(path, INDEX_FILE))
    if path.endswith(SUFFIX):
        return looks_like_sidecar(path)
    head, tail = _ends(path)
    return bool(_NATIVE.match(head) or _PROVENANCE.search(head) or _PROVENANCE.search(tail))


def _is_native(path: str) -> bool:
    return bool(_NATIVE.match(_ends(path)[0]))


def _local_path(filename_or_obj) -> str | None:
    """The local path ``filename_or_obj`` names; None for a URL or another object."""
    if not isinstance(filename_or_obj, str | os.PathLike):
        return None
    text = os.fspath(filename_or_obj)
    if not isinstance(text, str) or ("://" in text and not text.startswith("file://")):
        return None
    return text.removeprefix("file://")


def _remote_name(filename_or_obj) -> str:
    text = os.fspath(filename_or_obj) if isinstance(filename_or_obj, str | os.PathLike) else ""
    return text if isinstance(text, str) else ""


def _ends(path: str) -> tuple[bytes, bytes]:
    """The first and the last ``SNIFF_BYTES`` of the file (empty when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
            if len(head) < SNIFF_BYTES:
                return head, head
            f.seek(-SNIFF_BYTES, os.SEEK_END)
            return head, f.read(SNIFF_BYTES)
    except OSError:
        return b"", b""
