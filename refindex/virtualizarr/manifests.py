"""An Index as VirtualiZarr's in-memory model: a ManifestGroup tree of ManifestArrays whose
chunk manifests are built column by column from refindex's chunk tables (source ids become
paths by one NumPy take: no Python object per chunk).

Chunks refindex holds inline (compact datasets, variable-length strings, references, chunks
HDF5 stored unfiltered) cannot be a manifest entry: such an array gets entries under
``refindex-inline://`` that the parser's store serves from memory, and is loaded, never left
virtual (``refindex.virtualizarr.store``). What has no VirtualiZarr form is refused by name:
arrays with uneven chunks (combined from members of uneven lengths), arrays the scan left
out, codecs or dtypes Zarr v3 cannot describe.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from virtualizarr.manifests import ChunkManifest, ManifestArray, ManifestGroup
from zarr.codecs import VLenBytesCodec, VLenUTF8Codec

from refindex.errors import UnsupportedFeatureError
from refindex.index import INLINE, WHOLE, ArrayNode, Index
from refindex.virtualizarr.metadata import Refusal, v3_attributes, v3_metadata
from refindex.xarray.dimensions import valid_dimensions, with_dimensions

INLINE_SCHEME = "refindex-inline://"
"""Paths of the manifest entries of inline chunks; no object store answers them."""


@dataclass
class Conversion:
    """The root group, and the inline chunks' bytes by store key (``grp/var/c.0.1``)."""

    group: ManifestGroup
    inline: dict[str, bytes] = field(default_factory=dict)
    inline_arrays: set[str] = field(default_factory=set)
    """Paths of the arrays with inline chunks (and of empty arrays): loaded, never
    virtual."""


def to_manifest_group(index: Index, name: str, group: str = "",
                      drop_variables: Iterable[str] = ()) -> Conversion:
    """The group at ``group`` of ``index`` (from the file or sidecar ``name``), and below.

    ``drop_variables``: array names (or paths from ``group``) to leave out, as VirtualiZarr's
    parsers take them. Raises UnsupportedFeatureError naming an array that cannot be held.
    """
    group = group.strip("/")
    groups = _group_paths([*index.groups, *(p.rpartition("/")[0] for p in index.arrays)])
    if group not in groups:
        raise UnsupportedFeatureError(name, "/" + group, "no such group",
                                      f"groups: {sorted('/' + g for g in groups)}")
    dropped = set(drop_variables)
    index = with_dimensions(index)
    paths = _source_paths(index, name)
    sizes = np.array([-1 if s.size is None else s.size for s in index.sources] or [-1],
                     dtype=np.int64)
    conversion = Conversion(ManifestGroup())
    arrays: dict[str, dict[str, ManifestArray]] = {g: {} for g in groups}
    for path, node in index.arrays.items():
        parent, _, base = path.rpartition("/")
        relative = _relative(path, group)
        if relative is None or base in dropped or relative in dropped:
            continue
        arrays.setdefault(parent, {})[base] = _manifest_array(node, name, (paths, sizes),
                                                              conversion, relative)
    for path, reason in index.left_out.items():
        relative = _relative(path, group)
        if relative is not None and path.rpartition("/")[2] not in dropped \
                and relative not in dropped:
            raise UnsupportedFeatureError(
                name, "/" + path, f"left out when the container was scanned: {reason}",
                f"drop it with drop_variables=[{relative!r}]")
    conversion.group = _tree(index, groups, arrays, group)
    return conversion


def _group_paths(named: Iterable[str]) -> set[str]:
    """The groups ``named`` (those an index names and its arrays' parents: a kerchunk
    sidecar need not name them) with all their enclosing groups."""
    paths: set[str] = set()
    for path in set(named):
        while path not in paths:
            paths.add(path)
            path = path.rpartition("/")[0]
    return paths


def _relative(path: str, group: str) -> str | None:
    if not group:
        return path
    return path[len(group) + 1:] if path.startswith(group + "/") else None


def _tree(index: Index, paths: set[str], arrays: dict[str, dict[str, ManifestArray]],
          path: str) -> ManifestGroup:
    children = {g.rpartition("/")[2]: g for g in paths if g and g.rpartition("/")[0] == path}
    groups = {child: _tree(index, paths, arrays, full) for child, full in children.items()}
    attrs = _group_attributes(index, path)
    return ManifestGroup(arrays=arrays.get(path, {}), groups=groups, attributes=attrs)


def _group_attributes(index: Index, path: str) -> dict:
    return v3_attributes(index.groups.get(path, {}), index.group_attr_dtypes.get(path, {}),
                         np.dtype("f8"))


def _source_paths(index: Index, name: str) -> np.ndarray:
    """Per source id, its URI as VirtualiZarr reads it (local paths as ``file://`` + path)."""
    uris = []
    for source in index.sources:
        url = source.url
        if url.startswith("file://") or "://" in url:
            uris.append(url)
        elif os.path.isabs(url):
            # Not percent-encoded: VirtualiZarr's ManifestStore and kerchunk writer take the
            # path after "file://" as it is (a space as %20 would name another file).
            uris.append("file://" + url)
        else:
            raise UnsupportedFeatureError(name, "(sources)", f"source {url!r} is a relative "
                                          "path", "VirtualiZarr needs absolute paths or URLs")
    return np.array(uris or [""], dtype=np.dtypes.StringDType())


def _manifest_array(node: ArrayNode, name: str, sources: tuple[np.ndarray, np.ndarray],
                    conversion: Conversion, relative: str) -> ManifestArray:
    where = "/" + node.path
    hint = f"drop it with drop_variables=[{relative!r}]"
    if node.irregular:
        raise UnsupportedFeatureError(name, where, "chunks of uneven lengths (combined from "
                                      "members of uneven lengths): a VirtualiZarr manifest "
                                      "needs one chunk shape", hint)
    try:
        metadata = v3_metadata(node.zarray, node.attrs, node.attr_dtypes,
                               valid_dimensions(node) or ())
    except Refusal as exc:
        raise UnsupportedFeatureError(name, where, str(exc), hint) from None
    manifest = _manifest(node, name, sources, conversion, relative)
    if isinstance(metadata.codecs[0], VLenUTF8Codec | VLenBytesCodec):
        # Variable-length strings are loaded even when referenced (a Zarr store's): the
        # kerchunk writer leaves the string codec out of the .zarray it writes.
        conversion.inline_arrays.add(relative)
    return ManifestArray(metadata=metadata, chunkmanifest=manifest)


def _manifest(node: ArrayNode, name: str, sources: tuple[np.ndarray, np.ndarray],
              conversion: Conversion, relative: str) -> ChunkManifest:
    """The chunk table as manifest columns: paths by one take of the source URIs."""
    paths, sizes = sources
    table = node.chunks
    source, offset, length = table.source, table.offset, table.length
    referenced = source >= 0
    length = length.copy()
    whole = referenced & (length == WHOLE)
    if whole.any():
        length[whole] = sizes[source[whole]]
        if (length[whole] < 0).any():
            raise UnsupportedFeatureError(name, "/" + node.path, "a chunk is a whole object "
                                          "of unknown size", "scan it again")
    uris = paths[np.where(referenced, source, 0)]
    uris[~referenced] = ""
    inline = source == INLINE
    if inline.any() or not math.prod(node.zarray["shape"]):
        # Empty arrays too: VirtualiZarr's writers cannot iterate a manifest of zero chunks,
        # and loading one reads nothing.
        conversion.inline_arrays.add(relative)
        for flat, data in table.inline.items():
            key = _chunk_key(relative, table.coords(flat))
            conversion.inline[key] = data
            uris[flat] = INLINE_SCHEME + key
    offsets = np.where(referenced, offset, 0).astype(np.uint64)
    lengths = np.where(referenced, length, 0).astype(np.uint64)
    return ChunkManifest.from_arrays(paths=uris.reshape(table.grid),
                                     offsets=offsets.reshape(table.grid),
                                     lengths=lengths.reshape(table.grid),
                                     validate_paths=False)


def _chunk_key(path: str, coords: tuple[int, ...]) -> str:
    return f"{path}/c." + ".".join(map(str, coords)) if coords else f"{path}/c"

