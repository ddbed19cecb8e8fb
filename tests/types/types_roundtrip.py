"""Building a Zarr v2 array from a TypePlan and reading it back, for the type tests.

``read_through_zarr(dset)`` is the contract under test: it builds a Zarr v2 array in a
MemoryStore from ``plan_type(dset)`` alone — referencable chunks from the raw chunk bytes HDF5
stores (``read_direct_chunk``; no compression in these tests), other arrays from
``encode_inline`` — and reads it with ``zarr.open_group(..., zarr_format=2)``.
"""

from __future__ import annotations

import asyncio
import itertools
import json

import h5py
import numcodecs
import numpy as np
import zarr
from zarr.core.buffer import default_buffer_prototype
from zarr.storage import MemoryStore

from refindex.scan.hdf5.type_layout import ValueKind, packed
from refindex.scan.hdf5.types import TypePlan, encode_inline, plan_numpy_dtype, plan_type
from refindex.store.zarr_dtypes import register

register()


def write_store(entries: dict[str, bytes]) -> MemoryStore:
    """A MemoryStore holding ``entries`` (key → bytes)."""
    store = MemoryStore()
    buffer = default_buffer_prototype().buffer

    async def put() -> None:
        for key, value in entries.items():
            await store.set(key, buffer.from_bytes(value))

    asyncio.run(put())
    return store


def zarray(plan: TypePlan, shape: tuple[int, ...], chunks: tuple[int, ...]) -> dict:
    """The ``.zarray`` document for ``plan``."""
    return {
        "zarr_format": 2,
        "shape": list(shape),
        "chunks": list(chunks),
        "dtype": plan.zarr_dtype,
        "compressor": None,
        "fill_value": plan.fill_value,
        "order": "C",
        "filters": [plan.object_codec] if plan.object_codec else None,
    }


def _chunk_key(index: tuple[int, ...]) -> str:
    return ".".join(map(str, index)) if index else "0"


def _referenced_chunks(dset: h5py.Dataset, inner: tuple[int, ...]) -> dict[str, bytes]:
    out = {}
    for i in range(dset.id.get_num_chunks()):
        offset = dset.id.get_chunk_info(i).chunk_offset
        mask, raw = dset.id.read_direct_chunk(offset)
        assert mask == 0
        index = tuple(o // c for o, c in zip(offset, dset.chunks, strict=True)) + (0,) * len(inner)
        out[_chunk_key(index)] = raw
    return out


def _pad_value(plan: TypePlan):
    if plan.kind is ValueKind.SEQUENCE:
        return np.array([], dtype=plan.object_codec["dtype"])
    return b"" if plan.kind is ValueKind.VLEN_BYTES else ""


def _inlined_chunks(values: np.ndarray, plan: TypePlan, chunks: tuple[int, ...]) -> dict:
    codec = numcodecs.get_codec(dict(plan.object_codec)) if plan.object_codec else None
    grid = [range(-(-n // c)) for n, c in zip(values.shape, chunks, strict=True)]
    out = {}
    for index in itertools.product(*grid):
        part = values[tuple(slice(i * c, (i + 1) * c) for i, c in zip(index, chunks, strict=True))]
        # Zarr v2 chunks are always full; pad edge chunks as zarr-python does.
        full = np.empty(chunks, dtype=part.dtype)
        if codec is None:
            full[...] = np.zeros((), dtype=part.dtype)
        elif plan.kind is ValueKind.OBJECTS:
            pass  # np.empty's None elements and fields encode as they are
        else:
            for i in np.ndindex(full.shape):
                full[i] = _pad_value(plan)
        full[tuple(slice(0, n) for n in part.shape)] = part
        out[_chunk_key(index)] = codec.encode(full) if codec else full.tobytes()
    return out


def build_zarr(dset: h5py.Dataset, plan: TypePlan) -> zarr.Array:
    """The Zarr v2 array that ``plan`` describes for ``dset``, opened through zarr-python."""
    shape = dset.shape + plan.inner_shape
    chunks = (dset.chunks or dset.shape) + plan.inner_shape
    if plan.referencable:
        data = _referenced_chunks(dset, plan.inner_shape)
    else:
        data = _inlined_chunks(encode_inline(dset[()], plan), plan, chunks)
    entries = {
        ".zgroup": b'{"zarr_format": 2}',
        "a/.zarray": json.dumps(zarray(plan, shape, chunks)),
    }
    entries["a/.zarray"] = entries["a/.zarray"].encode()
    entries.update({f"a/{key}": value for key, value in data.items()})
    group = zarr.open_group(write_store(entries), mode="r", zarr_format=2)
    return group["a"]


def read_through_zarr(dset: h5py.Dataset) -> tuple[TypePlan, np.ndarray]:
    """``(plan, values)``: the dataset's plan and all its values read back through zarr."""
    plan = plan_type(dset)
    return plan, build_zarr(dset, plan)[...]


def assert_same_bits(from_zarr: np.ndarray, from_h5py: np.ndarray, plan: TypePlan) -> None:
    """Equal dtype, shape and bytes (so NaN payloads, -0.0 and padding-free records count)."""
    # Records with padding are inlined packed; compare field by field without the padding.
    expected = np.ascontiguousarray(from_h5py.astype(packed(from_h5py.dtype)))
    assert from_zarr.dtype == plan_numpy_dtype(plan) == expected.dtype
    assert from_zarr.shape == expected.shape
    assert from_zarr.tobytes() == expected.tobytes()
