"""kerchunk's parquet references, read (as fsspec's ``LazyReferenceMapper`` writes them, and
``kerchunk.df.refs_to_dataframe`` with it).

A directory holds ``.zmetadata`` — ``{"metadata": {Zarr v2 key: document}, "record_size": N}``
— and per array ``<array path>/refs.<n>.parq``: the references of chunks ``n * N`` to
``(n + 1) * N - 1`` in C order of the chunk grid, one row each, with columns ``path`` (URL or
null), ``offset``, ``size`` and ``raw`` (inline bytes or null). ``offset`` and ``size`` both 0
mean the whole object; a null ``path`` and ``raw``, or a missing file, mean absent chunks.
"""

from __future__ import annotations

import io
import math

import numpy as np

from refindex.errors import SidecarError, SourceNotFoundError
from refindex.index import ABSENT, WHOLE, ChunkTable, Index, Source
from refindex.sidecar.kerchunk_json import FORMAT_KEY, from_kerchunk
from refindex.sidecar.location import sibling, sidecar_bytes

METADATA_FILE = ".zmetadata"


def is_parquet_refs(doc: object) -> bool:
    """Whether a parsed ``.zmetadata`` is that of a parquet reference directory."""
    return (isinstance(doc, dict) and isinstance(doc.get("record_size"), int)
            and isinstance(doc.get("metadata"), dict))


def from_parquet_refs(doc: dict, name: str, options=None) -> Index:
    """The Index of the parquet references whose ``.zmetadata`` (at ``name``) is ``doc``;
    every record file is read now (through the I/O engine with ``options`` for URLs)."""
    record_size = doc["record_size"]
    if record_size <= 0:
        raise SidecarError(f"{name}: 'record_size' must be positive, got {record_size}")
    # Our own writer (kerchunk_parquet.py) keeps the sources' identities beside kerchunk's keys.
    index = from_kerchunk({"version": 1, "refs": dict(doc["metadata"]),
                           FORMAT_KEY: doc.get(FORMAT_KEY, {})}, name)
    pandas = _pandas(name)
    for path, node in index.arrays.items():
        table = node.chunks
        for record in range(math.ceil(len(table) / record_size)):
            file = sibling(name, f"{path}/refs.{record}.parq")
            try:
                data = sidecar_bytes(file, options)
            except SourceNotFoundError:
                continue  # fsspec reads a record never written as absent chunks
            start = record * record_size
            count = min(record_size, len(table) - start)
            frame = _read_frame(pandas, data, count, file)
            _store_record(index, table, start, frame, file)
    return index


def _pandas(name: str):
    try:
        import pandas

        pandas.io.parquet.get_engine("auto")
    except ImportError as exc:
        raise SidecarError(f"{name}: reading kerchunk parquet references needs pandas with "
                           "fastparquet or pyarrow: pip install 'refindex[parquet]' "
                           f"({exc})") from None
    return pandas


def _read_frame(pandas, data: bytes, count: int, file: str):
    try:
        frame = pandas.read_parquet(io.BytesIO(data))
    except Exception as exc:  # each parquet engine raises its own errors for a corrupt file
        raise SidecarError(f"{file}: not a readable parquet file ({exc})") from None
    if len(frame) < count or not {"path", "raw"} & set(frame.columns):
        raise SidecarError(f"{file}: expected {count} rows with columns path, offset, size "
                           f"and raw, found {len(frame)} rows of {list(frame.columns)}")
    return frame.iloc[:count]


def _store_record(index: Index, table: ChunkTable, start: int, frame, file: str) -> None:
    """The references of one record file into ``table`` from flat position ``start``."""
    count = len(frame)
    source = np.full(count, ABSENT, dtype=np.int32)
    offset = np.zeros(count, dtype=np.int64)
    length = np.zeros(count, dtype=np.int64)
    if "path" in frame.columns:
        codes, urls = frame["path"].factorize()
        ids = np.array([index.add_source(Source(str(url))) for url in urls], dtype=np.int32)
        referenced = codes >= 0
        source[referenced] = ids[codes[referenced]]
        offset[referenced] = _integers(frame, "offset", file)[referenced]
        length[referenced] = _integers(frame, "size", file)[referenced]
        if (offset < 0).any() or (length < 0).any():
            raise SidecarError(f"{file}: negative offset or size")
        length[referenced & (offset == 0) & (length == 0)] = WHOLE
    stop = start + count
    table.source[start:stop], table.offset[start:stop], table.length[start:stop] = (
        source, offset, length)
    if "raw" in frame.columns:
        for row in np.flatnonzero(frame["raw"].notna().to_numpy()).tolist():
            raw = frame["raw"].iat[row]
            table.set_inline(start + row, raw.encode() if isinstance(raw, str) else bytes(raw))


def _integers(frame, column: str, file: str) -> np.ndarray:
    if column not in frame.columns:
        raise SidecarError(f"{file}: a 'path' column without {column!r}")
    return frame[column].to_numpy(dtype=np.int64, na_value=0)
