"""Checks for the codec tests: sample data, and every stored chunk decodes bit for bit."""

from __future__ import annotations

from collections.abc import Iterator

import h5py
import numcodecs
import numpy as np

from refindex.codecs import codecs_for, filters_of

INTEGER_DTYPES = ["i1", "<i2", "<i4", "<i8", "u1", "<u2", "<u4", "<u8", ">i2", ">i4", ">u8"]
FLOAT_DTYPES = ["<f2", "<f4", "<f8", ">f4", ">f8"]


def sample(dtype: str | np.dtype, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Smooth-ish data with some noise (compressible, not trivial), NaN and inf for floats."""
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    ramp = np.arange(int(np.prod(shape))).reshape(shape) % 97
    noise = rng.integers(0, 5, shape)
    if dtype.kind == "f":
        values = (np.sin(ramp / 7.0) * 1000 + noise).astype(dtype)
        values.flat[3] = np.nan
        values.flat[5] = np.inf
        return values
    info = np.iinfo(dtype)
    values = (ramp * 3 + noise).astype(np.int64) + max(info.min, -100)
    return values.clip(info.min, info.max).astype(dtype)


def decode(configs: list[dict], raw: bytes) -> bytes:
    """A stored chunk decoded as Zarr v2 does: ``filters`` applied last first."""
    data = raw
    for config in reversed(configs):
        data = numcodecs.get_codec(config).decode(data)
    return np.ascontiguousarray(data).tobytes()


def stored_chunks(dset: h5py.Dataset) -> Iterator[tuple[tuple[int, ...], int, bytes]]:
    """(chunk offset in elements, filter mask, stored bytes) for every allocated chunk."""
    for index in range(dset.id.get_num_chunks()):
        offset = dset.id.get_chunk_info(index).chunk_offset
        mask, raw = dset.id.read_direct_chunk(offset)
        yield offset, mask, raw


def assert_chunks_exact(dset: h5py.Dataset) -> list[int]:
    """Every chunk of ``dset`` decodes bit for bit to what h5py reads; returns the masks seen.

    Edge chunks are compared on their valid part only: HDF5 pads them with unspecified bytes.
    """
    filters = filters_of(dset.id.get_create_plist())
    masks = []
    for offset, mask, raw in stored_chunks(dset):
        configs = codecs_for(filters, dset.dtype, dset.chunks, filter_mask=mask)
        full = np.frombuffer(decode(configs, raw), dtype=dset.dtype).reshape(dset.chunks)
        region = tuple(
            slice(start, min(start + size, extent))
            for start, size, extent in zip(offset, dset.chunks, dset.shape, strict=True)
        )
        valid = tuple(slice(0, r.stop - r.start) for r in region)
        expected = dset[region]
        # Compare bytes, not values: NaN != NaN, and -0.0 == 0.0 would hide a wrong sign.
        assert full[valid].tobytes() == expected.tobytes(), f"chunk at {offset} differs"
        masks.append(mask)
    assert masks, "the dataset has no stored chunks"
    return masks


def ids(dset: h5py.Dataset, filter_mask: int = 0) -> list[str]:
    """The codec ids ``codecs_for`` picks for ``dset``."""
    filters = filters_of(dset.id.get_create_plist())
    return [c["id"] for c in codecs_for(filters, dset.dtype, dset.chunks, filter_mask)]
