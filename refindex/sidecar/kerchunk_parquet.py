"""kerchunk's parquet references, written (the layout fsspec's ``LazyReferenceMapper`` reads
lazily, one record file at a time; ``parquet.py`` reads it back).

A directory with ``.zmetadata`` — ``{"metadata": {Zarr v2 key: document}, "record_size": N,
"refindex": provenance}`` (the sources with their sizes, ETags and times, as kerchunk JSON
carries them; fsspec ignores the key) — and per array ``<path>/refs.<n>.parq`` holding chunks
``n * N`` to ``(n + 1) * N - 1`` in C order of the chunk grid: ``path`` (URL, null for absent
and inline chunks), ``offset``, ``size`` (both 0: the whole object) and, in records that have
inline chunks, ``raw``. A record without any chunk is not written (fsspec reads it as absent
chunks). Written with pyarrow straight from the chunk table's columns, record by record: no
Python object per chunk, and a lazily loaded table is read one part at a time.

Chunk keys in ``.zarray`` use the ``.`` separator: fsspec finds a chunk's row from its key
split on dots.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import ujson

from refindex.errors import SidecarError
from refindex.index import INLINE, WHOLE, ArrayNode, Index
from refindex.sidecar.kerchunk_json import FORMAT_KEY, provenance
from refindex.sidecar.parquet import METADATA_FILE

RECORD_SIZE = 100_000
"""Chunks per record file (fsspec's own writer defaults to 10,000; larger records mean fewer
files and requests at tens of millions of chunks, at ~1.6 MB of columns per record read)."""


def write_kerchunk_parquet(index: Index, path: str | os.PathLike,
                           record_size: int = RECORD_SIZE) -> int:
    """Write ``index`` as a kerchunk parquet reference directory at ``path`` (replacing what
    is there); returns the bytes written."""
    pa, pq = _pyarrow(path)
    if record_size < 1:
        raise ValueError(f"record_size must be at least 1, got {record_size}")
    _refuse_irregular(index, path)
    metadata = _metadata(index)  # refuses what parquet references cannot hold, first
    root = Path(path)
    if root.is_dir():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    urls = pa.array([s.url for s in index.sources], type=pa.string())
    written = 0
    for array_path, node in index.arrays.items():
        for record in range(-(-len(node.chunks) // record_size)):
            table = _record_table(pa, node, urls, record * record_size, record_size)
            if table is None:
                continue
            file = root / array_path / f"refs.{record}.parq"
            file.parent.mkdir(parents=True, exist_ok=True)
            # Statistics (null counts) of offset and size: without them fastparquet, fsspec's
            # reader, reads the columns as nullable integers whose values are not ints.
            pq.write_table(table, file, compression="zstd",
                           write_statistics=["offset", "size"])
            written += file.stat().st_size
    doc = {"metadata": metadata, "record_size": record_size,
           FORMAT_KEY: provenance(index)}
    data = ujson.dumps(doc, escape_forward_slashes=False).encode()
    (root / METADATA_FILE).write_bytes(data)
    return written + len(data)


def _record_table(pa, node: ArrayNode, urls, start: int, record_size: int):
    """The columns of one record file, or None when it holds no chunk."""
    table = node.chunks
    stop = min(start + record_size, len(table))
    source, offset, length = table.columns(start, stop)
    referenced = source >= 0
    inline = np.flatnonzero(source == INLINE)
    if not referenced.any() and not len(inline):
        return None
    ids = pa.array(np.where(referenced, source, 0).astype(np.int32), mask=~referenced)
    paths = pa.DictionaryArray.from_arrays(ids, urls).cast(pa.string())
    whole = referenced & (length == WHOLE)
    offsets = np.where(referenced & ~whole, offset, 0).astype(np.int64)
    sizes = np.where(referenced & ~whole, length, 0).astype(np.int64)
    fields = [pa.field("path", pa.string()), pa.field("offset", pa.int64(), nullable=False),
              pa.field("size", pa.int64(), nullable=False)]
    columns = [paths, pa.array(offsets), pa.array(sizes)]
    if len(inline):
        raw = [None] * (stop - start)
        for row in inline.tolist():
            raw[row] = table.get(start + row).data
        fields.append(pa.field("raw", pa.binary()))
        columns.append(pa.array(raw, type=pa.binary()))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def _metadata(index: Index) -> dict:
    """Every Zarr v2 metadata document of the index, keyed as kerchunk keys them."""
    metadata: dict[str, dict] = {}
    for path, kind in index.iter_nodes():
        prefix = f"{path}/" if path else ""
        if kind == "group":
            metadata[prefix + ".zgroup"] = {"zarr_format": 2}
            if index.groups[path]:
                metadata[prefix + ".zattrs"] = index.groups[path]
            continue
        node = index.arrays[path]
        metadata[prefix + ".zarray"] = (node.zarray if node.separator == "." else
                                        {**node.zarray, "dimension_separator": "."})
        if node.attrs:
            metadata[prefix + ".zattrs"] = node.attrs
    for key, ref in index.extra.items():
        metadata[key] = _extra_document(key, ref)
    return metadata


def _extra_document(key: str, ref) -> object:
    """A key a foreign sidecar had beside the arrays' (kept in ``extra``): parquet references
    hold such keys only as JSON documents in ``.zmetadata``."""
    if ref.source == INLINE:
        try:
            return ujson.loads(ref.data)
        except (ValueError, UnicodeDecodeError):
            pass
    raise SidecarError(f"key {key!r} is neither Zarr metadata nor a chunk of a known array, "
                       "and not a JSON document: kerchunk parquet references cannot hold it "
                       "(keep the native or kerchunk JSON format)")


def _refuse_irregular(index: Index, path) -> None:
    irregular = sorted(p for p, node in index.arrays.items() if node.irregular)
    if irregular:
        listed = ", ".join(repr(p) for p in irregular[:5]) + (" ..." if len(irregular) > 5
                                                              else "")
        raise SidecarError(f"{os.fspath(path)}: arrays {listed} have chunks of differing "
                           "lengths (combined from members of uneven lengths); kerchunk "
                           "references can only say a regular grid: keep the native format")
    if "" in index.arrays:
        raise SidecarError(f"{os.fspath(path)}: the root is an array; kerchunk parquet "
                           "references keep chunks in a directory per array")


def _pyarrow(path):
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise SidecarError(f"{os.fspath(path)}: writing kerchunk parquet references needs "
                           f"pyarrow: pip install 'refindex[parquet]' ({exc})") from None
    return pa, pq
