"""The metadata documents a dataset is served with: the store's Zarr v2 documents with each
array's ``.zarray`` as its plan serves it (``refindex.serve.transcode``), consolidated
``.zmetadata`` of those, and — for datasets served as Zarr v3 — a ``zarr.json`` per node.

The v3 view says what the v2 documents say: the same chunk keys (``chunk_key_encoding`` v2),
the same bytes. It exists only where v3's codecs can say it (gzip, zstd, blosc or none; not
zlib, lz4 or filters), which after transcoding is every array of numbers.
"""

from __future__ import annotations

import numpy as np
import ujson

from refindex.index import Index
from refindex.serve.config import DatasetConfig, ServeConfigError
from refindex.serve.keys import V2_METADATA, V3_METADATA
from refindex.serve.transcode import ArrayPlan, plan_array
from refindex.store.reference import metadata_documents


def served_documents(index: Index, dataset: DatasetConfig
                     ) -> tuple[dict[str, bytes], dict[str, ArrayPlan]]:
    """The metadata documents of ``dataset`` (key → JSON bytes) and each array's plan (by
    path); raises ServeConfigError when the dataset is to be served as v3 and an array
    cannot be said in v3."""
    source = {key: ujson.loads(data) for key, data in metadata_documents(index).items()
              if key.rsplit("/", 1)[-1] in V2_METADATA and not key.endswith(".zmetadata")}
    plans: dict[str, ArrayPlan] = {}
    served: dict[str, dict] = {}
    for key, document in source.items():
        if key.endswith(".zarray"):
            path = key[: -len(".zarray")].rstrip("/")
            plans[path] = plan_array(document, dataset.transcode)
            document = plans[path].served
        served[key] = document
    documents: dict[str, bytes] = {}
    if 2 in dataset.zarr_formats:
        documents.update({key: _json(value) for key, value in served.items()})
        documents[".zmetadata"] = _json({"zarr_consolidated_format": 1, "metadata": served})
    if 3 in dataset.zarr_formats:
        documents.update({key: _json(value)
                          for key, value in _v3_documents(served, dataset.name).items()})
    return documents, plans


def _v3_documents(v2: dict[str, dict], name: str) -> dict[str, dict]:
    documents: dict[str, dict] = {}
    problems: list[str] = []
    for key, document in v2.items():
        prefix, _, kind = key.rpartition("/")
        prefix = f"{prefix}/" if prefix else ""
        attributes = v2.get(prefix + ".zattrs", {})
        if kind == ".zgroup":
            documents[prefix + V3_METADATA] = {"zarr_format": 3, "node_type": "group",
                                               "attributes": attributes}
        elif kind == ".zarray":
            converted = v3_array(document, attributes)
            if isinstance(converted, str):
                problems.append(f"{prefix.rstrip('/') or '/'}: {converted}")
            else:
                documents[prefix + V3_METADATA] = converted
    if problems:
        raise ServeConfigError(
            f"dataset {name!r} cannot be served as Zarr v3: " + "; ".join(problems[:20])
            + " (serve it as v2; for codecs, transcode to gzip, zstd, blosc or raw)")
    if V3_METADATA in documents:
        documents[V3_METADATA] = _consolidated(documents)
    return documents


def _consolidated(documents: dict[str, dict]) -> dict:
    """The root ``zarr.json`` with every other node's document inline (zarr-python's
    consolidated metadata), so that v3 readers open the hierarchy in one request."""
    members = {}
    for key, document in documents.items():
        path = key[: -len(V3_METADATA)].rstrip("/")
        if not path:
            continue
        if document["node_type"] == "group":
            document = {**document, "consolidated_metadata": _inline({})}
        members[path] = document
    return {**documents[V3_METADATA], "consolidated_metadata": _inline(members)}


def _inline(metadata: dict) -> dict:
    return {"kind": "inline", "must_understand": False, "metadata": metadata}


def v3_array(zarray: dict, attributes: dict) -> dict | str:
    """The v3 ``zarr.json`` of an array with v2 metadata ``zarray``, or why there is none."""
    if _is_utf8_strings(zarray):
        return _v3_strings(zarray, attributes)
    try:
        dtype = np.dtype(zarray["dtype"]) if isinstance(zarray["dtype"], str) else None
    except TypeError:
        dtype = None
    if dtype is None or dtype.kind not in "biufc":
        return f"data type {zarray['dtype']!r} has no Zarr v3 form"
    if zarray.get("filters"):
        return "filters " + ", ".join(str(f.get("id")) for f in zarray["filters"])
    compressor = _v3_compressor(zarray.get("compressor"), dtype.itemsize)
    if isinstance(compressor, str):
        return compressor
    codecs = _transposed(zarray)
    endian = "big" if dtype.byteorder == ">" else "little"
    codecs.append({"name": "bytes", "configuration": {"endian": endian}}
                  if dtype.itemsize > 1 else {"name": "bytes"})
    codecs.extend(compressor)
    return _array_document(zarray, attributes, _v3_type(dtype),
                           _v3_fill(zarray.get("fill_value"), dtype), codecs)


def _is_utf8_strings(zarray: dict) -> bool:
    filters = zarray.get("filters") or []
    return (zarray.get("dtype") == "|O" and len(filters) == 1
            and filters[0].get("id") == "vlen-utf8")


def _v3_strings(zarray: dict, attributes: dict) -> dict | str:
    """Variable-length UTF-8 strings: zarr-python's ``string`` type and ``vlen-utf8`` codec,
    whose bytes are numcodecs' VLenUTF8 (the v2 filter) exactly."""
    compressor = _v3_compressor(zarray.get("compressor"), 1)
    if isinstance(compressor, str):
        return compressor
    codecs = [*_transposed(zarray), {"name": "vlen-utf8", "configuration": {}}, *compressor]
    fill = zarray.get("fill_value")
    return _array_document(zarray, attributes, "string", fill if isinstance(fill, str) else "",
                           codecs)


def _transposed(zarray: dict) -> list[dict]:
    ndim = len(zarray["shape"])
    if (zarray.get("order") or "C") == "F" and ndim > 1:
        return [{"name": "transpose", "configuration": {"order": list(range(ndim))[::-1]}}]
    return []


def _array_document(zarray: dict, attributes: dict, data_type: str, fill_value,
                    codecs: list[dict]) -> dict:
    ndim = len(zarray["shape"])
    document = {
        "zarr_format": 3, "node_type": "array", "shape": zarray["shape"],
        "data_type": data_type,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": zarray["chunks"]}},
        "chunk_key_encoding": {"name": "v2", "configuration": {
            "separator": zarray.get("dimension_separator") or "."}},
        "fill_value": fill_value, "codecs": codecs, "attributes": attributes,
    }
    names = attributes.get("_ARRAY_DIMENSIONS")
    if isinstance(names, list) and len(names) == ndim and all(isinstance(n, str) for n in names):
        document["dimension_names"] = names
    return document


def _v3_type(dtype: np.dtype) -> str:
    if dtype.kind == "b":
        return "bool"
    return {"i": "int", "u": "uint", "f": "float", "c": "complex"}[dtype.kind] + str(
        dtype.itemsize * 8)


def _v3_fill(value, dtype: np.dtype):
    if dtype.kind == "c":
        return value if isinstance(value, list) else [value or 0.0, 0.0]
    if value is None:
        return False if dtype.kind == "b" else 0
    return value


def _v3_compressor(config: dict | None, itemsize: int) -> list[dict] | str:
    if config is None:
        return []
    codec = config.get("id")
    if codec == "gzip":
        return [{"name": "gzip", "configuration": {"level": config.get("level", 1)}}]
    if codec == "zstd":
        return [{"name": "zstd", "configuration": {"level": config.get("level", 0),
                                                   "checksum": bool(config.get("checksum"))}}]
    if codec == "blosc":
        shuffle = {0: "noshuffle", 1: "shuffle", 2: "bitshuffle"}.get(config.get("shuffle", 1))
        return [{"name": "blosc", "configuration": {
            "cname": config.get("cname", "lz4"), "clevel": config.get("clevel", 5),
            "shuffle": shuffle or "noshuffle", "typesize": itemsize,
            "blocksize": config.get("blocksize", 0)}}]
    return f"codec {codec!r} has no Zarr v3 form"


def _json(value: dict) -> bytes:
    return ujson.dumps(value, escape_forward_slashes=False, ensure_ascii=False).encode()
