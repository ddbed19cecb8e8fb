"""kerchunk reference JSON: version 1 written, versions 0 and 1 read (``templates``, ``gen``).

Reading turns the flat key → reference mapping into an :class:`~refindex.index.Index`;
writing does the reverse. Provenance that kerchunk has no place for (the sources' sizes and
ETags, the generator) goes under a top-level ``"refindex"`` key, which kerchunk and fsspec
ignore.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import math
from itertools import compress

import numpy as np
import ujson

from refindex.errors import SidecarError
from refindex.index import INLINE, WHOLE, ArrayNode, ChunkRef, ChunkTable, Index, Source
from refindex.sidecar.source_table import checked_source
from refindex.sidecar.templates import expand_gen, render
from refindex.sidecar.zarray_check import check_zarray, is_int

FORMAT_KEY = "refindex"
_META_SUFFIXES = (".zgroup", ".zarray", ".zattrs")
_TEMPLATE_MIN_USES = 2


def is_kerchunk(doc: object) -> bool:
    """Whether a parsed JSON document looks like kerchunk references (v0 or v1)."""
    if not isinstance(doc, dict):
        return False
    if "refs" in doc or "version" in doc:
        return isinstance(doc.get("refs", {}), dict)
    return any(k == ".zgroup" or k.endswith(("/.zgroup", "/.zarray", ".zarray")) for k in doc)


def from_kerchunk(doc: dict, name: str = "<sidecar>") -> Index:
    """Parse a kerchunk reference document (already JSON-decoded); ``name`` is for errors."""
    if not isinstance(doc, dict):
        raise SidecarError(f"{name}: not a kerchunk reference document (top level is not a map)")
    version = doc.get("version", 0 if "refs" not in doc else 1)
    if version not in (0, 1):
        raise SidecarError(f"{name}: kerchunk reference version {version!r} is not supported")
    if version == 1 and "refs" not in doc:
        raise SidecarError(f"{name}: version 1 references without a 'refs' map")
    refs = doc["refs"] if version == 1 else doc
    if not isinstance(refs, dict):
        raise SidecarError(f"{name}: 'refs' must be a map of key to reference")
    templates = doc.get("templates", {}) if version == 1 else {}
    gens = doc.get("gen", []) if version == 1 else []
    if not isinstance(templates, dict) or not isinstance(gens, list):
        raise SidecarError(f"{name}: 'templates' must be a map and 'gen' a list")
    refs = dict(refs)
    for gen in gens:
        refs.update(expand_gen(gen, templates, name))
    refs.pop("version", None)

    index = Index()
    provenance = doc.get(FORMAT_KEY, {})
    _read_provenance(index, provenance, name)
    chunks, metadata = _by_parent(refs)
    _read_metadata(index, metadata, name)
    _read_attr_dtypes(index, provenance.get("attribute_dtypes", {}), name)
    _read_group_attr_dtypes(index, provenance.get("group_attribute_dtypes", {}), name)
    _read_chunks(index, chunks, templates, name)
    return index


def _read_attr_dtypes(index: Index, dtypes: object, name: str) -> None:
    """Per array, the NumPy dtypes of numeric attributes JSON does not carry."""
    where = f"{name}: {FORMAT_KEY}.attribute_dtypes"
    if not isinstance(dtypes, dict):
        raise SidecarError(f"{where}: must be a map of array path to a map of dtypes")
    for path, entry in dtypes.items():
        if path not in index.arrays or not isinstance(entry, dict):
            raise SidecarError(f"{where}: {path!r} is not an array with a map of dtypes")
        index.arrays[path].attr_dtypes = attr_dtype_map(entry, f"{where}: {path!r}")


def _read_group_attr_dtypes(index: Index, dtypes: object, name: str) -> None:
    """Per group, the NumPy dtypes of attributes JSON does not carry."""
    where = f"{name}: {FORMAT_KEY}.group_attribute_dtypes"
    if not isinstance(dtypes, dict):
        raise SidecarError(f"{where}: must be a map of group path to a map of dtypes")
    for path, entry in dtypes.items():
        if path not in index.groups:
            raise SidecarError(f"{where}: {path!r} is not a group")
        index.group_attr_dtypes[path] = attr_dtype_map(entry, f"{where}: {path!r}")


def attr_dtype_map(dtypes: object, where: str) -> dict[str, str]:
    """A sidecar's map of attribute name -> NumPy dtype, checked; ``where`` names it."""
    try:
        return {k: np.dtype(v).str for k, v in dtypes.items()}
    except (AttributeError, TypeError) as exc:
        raise SidecarError(f"{where} must map attribute names to NumPy dtypes ({exc})") from None


def _read_provenance(index: Index, provenance: object, name: str) -> None:
    """Sources and generator from our own ``"refindex"`` key."""
    sources = provenance.get("sources", []) if isinstance(provenance, dict) else None
    generator = provenance.get("generator", {}) if isinstance(provenance, dict) else None
    if not isinstance(sources, list) or not isinstance(generator, dict):
        raise SidecarError(f"{name}: {FORMAT_KEY!r} must be a map with a 'sources' list and "
                           "a 'generator' map")
    fields = set(Source.__dataclass_fields__)
    for i, entry in enumerate(sources):
        if not isinstance(entry, dict) or "url" not in entry or not set(entry) <= fields:
            raise SidecarError(f"{name}: {FORMAT_KEY}.sources[{i}]: expected a map with 'url' "
                               f"and optionally {sorted(fields - {'url'})}, got {entry!r:.80}")
        index.sources.append(checked_source(entry, f"{name}: {FORMAT_KEY}.sources[{i}]"))
    index.generator = dict(generator)
    left_out = provenance.get("left_out", {})
    if not isinstance(left_out, dict) or not all(isinstance(r, str) for r in left_out.values()):
        raise SidecarError(f"{name}: {FORMAT_KEY}.left_out must map array paths to reasons")
    index.left_out = dict(left_out)


def _read_metadata(index: Index, metadata: dict, name: str) -> None:
    attrs: dict[str, dict] = {}
    for key, value in metadata.items():
        path, _, leaf = key.rpartition("/")
        meta = _json_value(value, key, name)
        if leaf == ".zgroup":
            index.groups.setdefault(path, {})
        elif leaf == ".zarray":
            check_zarray(meta, key, name)
            grid = tuple(-(-s // c) for s, c in zip(meta["shape"], meta["chunks"], strict=True))
            index.arrays[path] = ArrayNode(path, meta, {}, _eager_table(grid, key, name))
        else:
            attrs[path] = meta
    for path, value in attrs.items():
        if path in index.arrays:
            index.arrays[path].attrs = value
        else:
            index.groups.setdefault(path, {}).update(value)


MAX_EAGER_CHUNKS = 2**28  # a chunk table read from JSON is whole in memory: 20 bytes each


def _eager_table(grid: tuple[int, ...], key: str, name: str) -> ChunkTable:
    count = math.prod(grid)
    try:
        if count > MAX_EAGER_CHUNKS:
            raise MemoryError
        return ChunkTable(grid)
    except MemoryError:
        raise SidecarError(f"{name}: {key}: a grid of {count} chunks needs {20 * count} bytes "
                           "of chunk table in memory (kerchunk references are read whole); "
                           f"more than {MAX_EAGER_CHUNKS} chunks cannot be read from kerchunk "
                           "JSON") from None


def _read_chunks(index: Index, groups: dict[str, tuple[list[str], list]], templates: dict,
                 name: str) -> None:
    """Chunk references into the arrays' tables: plain ``[url, offset, length]`` references
    are gathered per array and stored with one vectorised pass (a million keys must not cost a
    NumPy call each); anything else goes through ``_parse_ref`` one by one."""
    plain = _PlainRefs(index, templates, name)
    with _gc_paused():
        for parent, (keys, values) in groups.items():
            node = index.arrays.get(parent)
            if node is not None and plain.add_array(node, keys, values):
                continue  # every key of this array was a plain chunk reference
            for key, value in zip(keys, values, strict=True):
                found = plain.owner(key)
                if found is None:
                    index.extra[key] = _parse_ref(index, key, value, templates, name)
                elif not plain.add(found, key, value):
                    node, coords = found
                    flat = _flat_index(node, coords, key, name)
                    ref = _parse_ref(index, key, value, templates, name)
                    if ref.source == INLINE:
                        node.chunks.set_inline(flat, ref.data)
                    else:
                        node.chunks.set(flat, ref.source, ref.offset, ref.length)
    plain.store()


def _by_parent(refs: dict) -> tuple[dict[str, tuple[list[str], list]], dict]:
    """(keys and values grouped by the path before their last ``/``, in order; the Zarr
    metadata documents), in one pass over the keys."""
    groups: dict[str, tuple[list[str], list]] = {}
    metadata = {}
    for key, value in refs.items():
        parent, _, leaf = key.rpartition("/")
        if leaf[:2] == ".z" and leaf in _META_SUFFIXES:
            metadata[key] = value
            continue
        group = groups.get(parent)
        if group is None:
            group = groups[parent] = ([], [])
        group[0].append(key)
        group[1].append(value)
    return groups, metadata


class _PlainRefs:
    """Plain references collected per array, then written into the chunk tables at once."""

    def __init__(self, index: Index, templates: dict, name: str) -> None:
        self.index, self.templates, self.name = index, templates, name
        self._parents: dict[str, ArrayNode | None] = {}
        self._sources: dict[str, int] = {}
        self._columns: dict[str, tuple[list, list, list, list, list]] = {}

    def owner(self, key: str) -> tuple[ArrayNode, tuple[int, ...]] | None:
        """The array ``key`` is a chunk of and its coordinates (cached per parent path)."""
        parent, _, leaf = key.rpartition("/")
        node = self._parents.get(parent, _UNKNOWN)
        if node is _UNKNOWN:
            node = self._parents[parent] = self.index.arrays.get(parent)
        if node is not None and node.separator == ".":
            coords = node.parse_chunk_name(leaf)
            return None if coords is None else (node, coords)
        return self.index.find_chunk(key)

    def add_array(self, node: ArrayNode, keys: list[str], values: list) -> bool:
        """Store the references of all ``keys`` of ``node`` at once, with string and NumPy
        operations over the whole group, when every one is a plain ``[url, offset, length]``
        chunk reference with a well-formed key; otherwise store nothing and return False (the
        caller then takes them one by one, which also names any bad key)."""
        grid = node.chunks.grid
        sep = node.separator
        cut = len(node.path) + 1 if node.path else 0
        names = sep.join(key[cut:] for key in keys)
        if not grid or not (names.isascii() and names.replace(sep, "").isdigit()):
            return False
        count = len(grid) * len(keys)
        if names.count(sep) != count - 1 or sep + sep in names or names[:1] == sep or (
                names[-1:] == sep):
            return False  # a key with too few or too many coordinates, or an empty one
        if not (set(map(type, values)) == {list} and set(map(len, values)) == {3}):
            return False
        urls, offsets, lengths = zip(*values, strict=True)
        if not (set(map(type, urls)) == {str} and set(map(type, offsets)) == {int}
                and set(map(type, lengths)) == {int}):
            return False  # bools, floats and the like: _parse_ref says what is wrong
        offset = np.array(offsets)
        length = np.array(lengths)
        if offset.dtype.kind != "i" or length.dtype.kind != "i" or (
                offset < 0).any() or (length < 0).any():
            return False
        # The text is digits and separators only (checked above), which fromstring parses
        # exactly and fifteen times faster than str -> int conversions.
        points = np.fromstring(names, dtype=np.int64, sep=sep)
        if points.size != count:
            return False
        points = points.reshape(len(keys), len(grid))
        if ((points >= np.asarray(grid)).any(axis=1)).any():
            return False  # outside the grid: the one-by-one path names the key
        ids = {url: self._source_id(url, keys[0]) for url in dict.fromkeys(urls)}
        flat = np.ravel_multi_index(points.T, grid)
        table = node.chunks
        table.source[flat] = np.fromiter(map(ids.__getitem__, urls), np.int32, len(urls))
        table.offset[flat] = offset
        table.length[flat] = length
        # A chunk key spelled twice ("1.02" and "1.2") is one chunk: last one wins, as in
        # the one-by-one path.
        return True

    def _source_id(self, raw_url: str, key: str) -> int:
        source = self._sources.get(raw_url)
        if source is None:
            url = render(raw_url, self.templates, self.name, key)
            source = self._sources[raw_url] = self.index.add_source(Source(url))
        return source

    def add(self, found: tuple[ArrayNode, tuple[int, ...]], key: str, value: object) -> bool:
        """Collect ``value`` if it is a plain, valid ``[url, offset, length]``."""
        if not (isinstance(value, list) and len(value) == 3 and isinstance(value[0], str)):
            return False
        offset, length = value[1], value[2]
        if not (_byte_count(offset) and _byte_count(length)):
            return False  # _parse_ref raises the error that names the key
        source = self._source_id(value[0], key)
        node, coords = found
        columns = self._columns.setdefault(node.path, ([], [], [], [], []))
        columns[0].append(coords)
        columns[1].append(source)
        columns[2].append(offset)
        columns[3].append(length)
        columns[4].append(key)
        return True

    def store(self) -> None:
        for path, (coords, sources, offsets, lengths, keys) in self._columns.items():
            table = self.index.arrays[path].chunks
            grid = np.asarray(table.grid, dtype=np.int64)
            points = np.asarray(coords, dtype=np.int64).reshape(len(coords), len(grid))
            outside = ((points < 0) | (points >= grid)).any(axis=1)
            if outside.any():
                key = keys[int(np.flatnonzero(outside)[0])]
                raise SidecarError(f"{self.name}: {key}: chunk outside the array's grid "
                                   f"{table.grid}")
            flat = np.ravel_multi_index(points.T, table.grid) if len(grid) else np.zeros(
                len(points), dtype=np.int64)
            table.source[flat] = sources
            table.offset[flat] = offsets
            table.length[flat] = lengths


_UNKNOWN = object()


def _flat_index(node: ArrayNode, coords: tuple[int, ...], key: str, name: str) -> int:
    try:
        return node.chunks.flat_index(coords)
    except IndexError:
        raise SidecarError(f"{name}: {key}: chunk outside the array's grid "
                           f"{node.chunks.grid}") from None


def _parse_ref(index: Index, key: str, value: object, templates: dict, name: str) -> ChunkRef:
    if isinstance(value, str):
        if value.startswith("base64:"):
            try:
                return ChunkRef(INLINE, data=base64.b64decode(value[7:], validate=True))
            except ValueError:
                raise SidecarError(f"{name}: {key}: invalid base64 inline data") from None
        return ChunkRef(INLINE, data=value.encode())
    if isinstance(value, dict):
        return ChunkRef(INLINE, data=ujson.dumps(value).encode())
    if isinstance(value, list) and len(value) in (1, 3) and isinstance(value[0], str):
        url = render(value[0], templates, name, key)
        source = index.add_source(Source(url))
        if len(value) == 1:
            return ChunkRef(source, 0, WHOLE)
        offset, length = value[1], value[2]
        if not (_byte_count(offset) and _byte_count(length)):
            raise SidecarError(f"{name}: {key}: offset and length must be integers from 0 "
                               f"to 2**63 - 1, got {offset!r}, {length!r}")
        return ChunkRef(source, int(offset), int(length))
    raise SidecarError(f"{name}: {key}: a reference must be a string or [url] or "
                       f"[url, offset, length], got {str(value)[:80]!r}")


def _byte_count(value: object) -> bool:
    """An offset or length a chunk table (int64) can hold."""
    return is_int(value) and 0 <= value < 2**63


def _json_value(value: object, key: str, name: str) -> dict:
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        text = base64.b64decode(value[7:]).decode() if value.startswith("base64:") else value
        try:
            parsed = ujson.loads(text)
        except ValueError as exc:
            raise SidecarError(f"{name}: {key}: invalid JSON metadata ({exc})") from None
        if isinstance(parsed, dict):
            return parsed
    raise SidecarError(f"{name}: {key}: metadata must be a JSON object")


def to_kerchunk(index: Index) -> dict:
    """The kerchunk version-1 document for ``index``, with a template per repeated URL."""
    with _gc_paused():
        return _to_kerchunk(index)


@contextlib.contextmanager
def _gc_paused():
    """Millions of small lists, none of them cyclic: the garbage collector's passes over
    them would cost more than building them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _to_kerchunk(index: Index) -> dict:
    irregular = sorted(path for path, node in index.arrays.items() if node.irregular)
    if irregular:
        listed = ", ".join(repr(p) for p in irregular[:5]) + (" ..." if len(irregular) > 5 else "")
        raise SidecarError(
            f"arrays {listed} have chunks of differing lengths (combined from members of "
            "uneven lengths); kerchunk references can only say a regular grid: keep the "
            "native format (its readers re-tile such arrays exactly)")
    templates, names = _templates(index)
    refs: dict[str, object] = {}
    for path, kind in index.iter_nodes():
        prefix = f"{path}/" if path else ""
        if kind == "group":
            refs[prefix + ".zgroup"] = ujson.dumps({"zarr_format": 2})
            if index.groups[path]:
                refs[prefix + ".zattrs"] = _dumps(index.groups[path])
            continue
        node = index.arrays[path]
        refs[prefix + ".zarray"] = _dumps(node.zarray)
        if node.attrs:
            refs[prefix + ".zattrs"] = _dumps(node.attrs)
        _write_chunks(node, names, refs)
    for key, ref in index.extra.items():
        refs[key] = _ref_value(ref, names)
    # Provenance first, its generator leading: the document's first bytes say refindex wrote
    # it (the xarray backend claims such files by them, refindex.xarray.guess).
    doc: dict[str, object] = {"version": 1, FORMAT_KEY: provenance(index)}
    if templates:
        doc["templates"] = templates
    doc["refs"] = refs
    return doc


def provenance(index: Index) -> dict:
    """What refindex records beside kerchunk's keys (under ``"refindex"``): generator, sources
    with their identities, attribute dtypes JSON does not carry, arrays left out."""
    found: dict[str, object] = {
        "generator": index.generator,
        "sources": [_source_json(s) for s in index.sources],
    }
    dtypes = {path: node.attr_dtypes for path, node in index.arrays.items() if node.attr_dtypes}
    if dtypes:
        found["attribute_dtypes"] = dtypes
    if index.group_attr_dtypes:
        found["group_attribute_dtypes"] = index.group_attr_dtypes
    if index.left_out:
        found["left_out"] = index.left_out
    return found


def _write_chunks(node: ArrayNode, names: list[str], refs: dict) -> None:
    table = node.chunks
    flat = table.present()
    keys = node.chunk_keys(flat)
    sources = table.source[flat]
    plain = (sources >= 0) & (table.length[flat] != WHOLE)
    # The common case, vectorised: [url, offset, length] for every referenced chunk.
    urls = np.asarray(names, dtype=object)[sources[plain]].tolist() if plain.any() else []
    values = map(list, zip(urls, table.offset[flat[plain]].tolist(),
                           table.length[flat[plain]].tolist(), strict=True))
    refs.update(zip(compress(keys, plain.tolist()), values, strict=True))
    others = (~plain).tolist()
    for key, position in zip(compress(keys, others), compress(flat.tolist(), others),
                             strict=True):
        refs[key] = _ref_value(table.get(position), names)


def _ref_value(ref: ChunkRef, names: list[str]) -> object:
    if ref.source == INLINE:
        return "base64:" + base64.b64encode(ref.data).decode()
    if ref.length == WHOLE:
        return [names[ref.source]]
    return [names[ref.source], ref.offset, ref.length]


def _templates(index: Index) -> tuple[dict[str, str], list[str]]:
    """Templates for URLs used more than once; and for every source the string refs carry."""
    uses = [0] * len(index.sources)
    for node in index.arrays.values():
        ids = node.chunks.source[node.chunks.source >= 0]
        for sid, count in zip(*_bincount(ids), strict=True):
            uses[sid] += count
    templates, names = {}, []
    for sid, source in enumerate(index.sources):
        if uses[sid] >= _TEMPLATE_MIN_USES and len(source.url) > 8:
            templates[f"u{sid}"] = source.url
            names.append(f"{{{{u{sid}}}}}")
        else:
            names.append(source.url)
    return templates, names


def _bincount(ids: np.ndarray) -> tuple[list[int], list[int]]:
    counts = np.bincount(ids) if ids.size else np.zeros(0, dtype=np.int64)
    nonzero = np.flatnonzero(counts)
    return nonzero.tolist(), counts[nonzero].tolist()


def _source_json(source: Source) -> dict:
    return {k: v for k, v in vars(source).items() if v is not None}


def _dumps(value: dict) -> str:
    return ujson.dumps(value, escape_forward_slashes=False, ensure_ascii=False)

