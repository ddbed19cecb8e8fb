"""The group and array hierarchy of a Zarr store (v2 or v3) among an archive's members: where
the store's root is, its metadata documents (consolidated metadata honoured), and each
array's v2 view.

The root is the deepest directory holding every metadata document, so that an archive of
``store.zarr/...`` and one of the store's contents read the same. When that directory is an
array, its parent is the root and the array keeps its name.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field

from refindex.errors import ContainerError, UnsupportedFeatureError
from refindex.io import ReadEngine
from refindex.scan.zarrstore.arrays import ArraySpec, v2_array
from refindex.scan.zarrstore.members import MemberTable, read_members
from refindex.scan.zarrstore.v3 import v3_array

V2_NODE_DOCS = (".zgroup", ".zarray", ".zmetadata")
METADATA_NAMES = frozenset((*V2_NODE_DOCS, ".zattrs", "zarr.json"))


@dataclass
class Hierarchy:
    """The store's root directory in the archive (``""`` for the archive's top), its groups
    (path -> attributes) and arrays (path -> ArraySpec), paths relative to the root."""

    root: str
    groups: dict[str, dict] = field(default_factory=dict)
    arrays: dict[str, ArraySpec] = field(default_factory=dict)
    unsupported: list[UnsupportedFeatureError] = field(default_factory=list)
    """Arrays left out because they cannot be referenced exactly."""

    def key_of(self, path: str) -> str:
        """The archive key of the store path ``path``."""
        return posixpath.join(self.root, path) if self.root else path


def read_hierarchy(table: MemberTable, engine: ReadEngine) -> Hierarchy:
    """Find the store in ``table``'s members and read its metadata (two batches of reads at
    most: the root's documents, then the others unless the root's were consolidated)."""
    rows = {key: row for row, key in enumerate(table.keys)
            if posixpath.basename(key) in METADATA_NAMES}
    node_dirs = [posixpath.dirname(key) for key in rows if not key.endswith("/.zattrs")]
    if not node_dirs:
        raise ContainerError(f"{table.where}: no Zarr metadata (.zgroup, .zarray, zarr.json) "
                             "in it: not a Zarr store")
    root = _common_directory(node_dirs)
    root_docs = _read(table, engine, rows, [_join(root, n) for n in METADATA_NAMES])
    documents = _consolidated(root_docs, root, table.where)
    if documents is None:
        under = [key for key in rows if root == "" or key.startswith(root + "/")]
        documents = {_relative(key, root): doc
                     for key, doc in _read(table, engine, rows, under).items()}
    hierarchy = Hierarchy(root)
    _build(hierarchy, documents, table.where)
    if "" in hierarchy.arrays and root:
        return _reroot(hierarchy, table.where)
    return hierarchy


def _common_directory(directories: list[str]) -> str:
    split = [d.split("/") if d else [] for d in directories]
    common = split[0]
    for parts in split[1:]:
        length = 0
        while length < min(len(common), len(parts)) and common[length] == parts[length]:
            length += 1
        common = common[:length]
    return "/".join(common)


def _join(root: str, name: str) -> str:
    return f"{root}/{name}" if root else name


def _relative(key: str, root: str) -> str:
    return key[len(root) + 1:] if root else key


def _read(table: MemberTable, engine: ReadEngine, rows: dict[str, int],
          keys: list[str]) -> dict[str, object]:
    """The JSON documents ``keys`` that exist, decoded."""
    present = [key for key in keys if key in rows]
    data = read_members(table, [rows[key] for key in present], engine)
    documents = {}
    for key, raw in zip(present, data, strict=True):
        try:
            documents[key] = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as error:
            raise ContainerError(f"{table.where}: {key} is not valid JSON ({error})") from None
    return documents


def _consolidated(root_docs: dict[str, object], root: str,
                  where: str) -> dict[str, object] | None:
    """Every metadata document by store key, from the root's consolidated metadata (v2
    ``.zmetadata``, or ``consolidated_metadata`` in a v3 root ``zarr.json``); None when the
    root has none."""
    v2 = root_docs.get(_join(root, ".zmetadata"))
    if v2 is not None:
        metadata = v2.get("metadata") if isinstance(v2, dict) else None
        if not isinstance(metadata, dict):
            raise ContainerError(f"{where}: {_join(root, '.zmetadata')} has no 'metadata' map")
        return dict(metadata)
    v3 = root_docs.get(_join(root, "zarr.json"))
    inline = v3.get("consolidated_metadata") if isinstance(v3, dict) else None
    if not isinstance(inline, dict) or not isinstance(inline.get("metadata"), dict):
        return None
    documents = {"zarr.json": v3}
    for path, doc in inline["metadata"].items():
        documents[_join(path, "zarr.json")] = doc
    return documents


def _build(hierarchy: Hierarchy, documents: dict[str, object], where: str) -> None:
    """Groups and arrays from the documents (store key -> JSON), with implicit parents."""
    for key, doc in documents.items():
        path, name = posixpath.dirname(key), posixpath.basename(key)
        if name == "zarr.json":
            _v3_node(hierarchy, path, doc, where)
        elif name in (".zgroup", ".zarray"):
            _v2_node(hierarchy, path, name, doc, documents.get(_join(path, ".zattrs"), {}),
                     where)
        elif name == ".zattrs" and path and _join(path, ".zgroup") not in documents and \
                _join(path, ".zarray") not in documents:
            hierarchy.groups.setdefault(path, _object(doc, key, where))
    for path in [*hierarchy.groups, *hierarchy.arrays]:
        while path:
            path = posixpath.dirname(path)
            if path in hierarchy.arrays:
                raise ContainerError(f"{where}: array {path!r} has children")
            hierarchy.groups.setdefault(path, {})
    if "" not in hierarchy.arrays:
        hierarchy.groups.setdefault("", {})


def _v3_node(hierarchy: Hierarchy, path: str, doc: object, where: str) -> None:
    key = _join(path, "zarr.json")
    doc = _object(doc, key, where)
    if doc.get("zarr_format") != 3:
        raise ContainerError(f"{where}: {key} is not Zarr v3 metadata (zarr_format "
                             f"{doc.get('zarr_format')!r})")
    _no_clash(hierarchy, path, where)
    if doc.get("node_type") == "group":
        hierarchy.groups[path] = _object(doc.get("attributes") or {}, key, where)
    elif doc.get("node_type") == "array":
        try:
            hierarchy.arrays[path] = v3_array(doc, path, where)
        except UnsupportedFeatureError as error:
            hierarchy.unsupported.append(error)
    else:
        raise ContainerError(f"{where}: {key}: unknown node_type {doc.get('node_type')!r}")


def _v2_node(hierarchy: Hierarchy, path: str, name: str, doc: object, attrs: object,
             where: str) -> None:
    _no_clash(hierarchy, path, where)
    if name == ".zgroup":
        hierarchy.groups[path] = _object(attrs, _join(path, ".zattrs"), where)
    else:
        hierarchy.arrays[path] = v2_array(doc, attrs, path, where)


def _no_clash(hierarchy: Hierarchy, path: str, where: str) -> None:
    if path in hierarchy.groups or path in hierarchy.arrays:
        raise ContainerError(f"{where}: {path or 'the root'} is described twice (Zarr v2 and "
                             "v3 metadata, or a group and an array): ambiguous store")


def _object(doc: object, key: str, where: str) -> dict:
    if not isinstance(doc, dict):
        raise ContainerError(f"{where}: {key} is not a JSON object")
    return doc


def _reroot(hierarchy: Hierarchy, where: str) -> Hierarchy:
    """The store is one array in a directory: its parent becomes the root."""
    parent, name = posixpath.dirname(hierarchy.root), posixpath.basename(hierarchy.root)
    spec = hierarchy.arrays.pop("")
    moved = Hierarchy(parent, {"": {}}, unsupported=hierarchy.unsupported)
    moved.arrays[name] = ArraySpec(name, spec.zarray, spec.attrs, spec.keys, spec.grid,
                                   spec.shard, spec.zarr_format)
    return moved
