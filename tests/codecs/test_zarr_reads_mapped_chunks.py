"""zarr-python reads a Zarr v2 array whose chunks are HDF5's stored bytes and filters ours."""

from __future__ import annotations

import json

import hdf5plugin
import numcodecs
import numpy as np
import pytest
import zarr
from hdf5_chunks import decode, stored_chunks

from refindex.codecs import codecs_for, filters_of

CASES = {
    "shuffle-deflate-fletcher32": {"shuffle": True, "compression": "gzip", "fletcher32": True},
    "scaleoffset-deflate": {"scaleoffset": 0, "compression": "gzip"},
    "szip": {"compression": "szip"},
    "lzf": {"compression": "lzf"},
    "bitshuffle-lz4": dict(hdf5plugin.Bitshuffle(cname="lz4")),
    "lz4": dict(hdf5plugin.LZ4()),
    "zstd": dict(hdf5plugin.Zstd()),
}


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("dtype", ["<i4", ">i2", "<f8", "u1"])
def test_zarr_reads_the_hdf5_chunks_exactly(make_dataset, tmp_path, name, dtype):
    options = CASES[name]
    if "scaleoffset" in options and dtype == "<f8":
        options = {**options, "scaleoffset": 3}
    # Smooth data, so every optional filter compresses except LZF on the smallest chunks.
    data = (np.arange(23 * 17).reshape(23, 17) % 50).astype(dtype)
    dset = make_dataset(data=data, **options)
    filters = codecs_for(filters_of(dset.id.get_create_plist()), dset.dtype, dset.chunks)
    root = tmp_path / "array.zarr"
    root.mkdir()
    zarray = {
        "zarr_format": 2,
        "shape": list(dset.shape),
        "chunks": list(dset.chunks),
        "dtype": dset.dtype.str,
        "compressor": None,
        "filters": filters,
        "fill_value": None,
        "order": "C",
    }
    (root / ".zarray").write_text(json.dumps(zarray))
    array_codecs = [numcodecs.get_codec(config) for config in filters]
    for offset, mask, raw in stored_chunks(dset):
        if mask:
            # HDF5 skipped an optional filter for this chunk (it did not shrink): re-encode
            # it with the array's codecs, as the scanner does for such chunks.
            chunk_filters = codecs_for(
                filters_of(dset.id.get_create_plist()), dset.dtype, dset.chunks, mask
            )
            chunk = np.frombuffer(decode(chunk_filters, raw), dset.dtype).reshape(dset.chunks)
            raw = chunk
            for codec in array_codecs:
                raw = codec.encode(raw)
            raw = bytes(raw)
        key = ".".join(str(start // size) for start, size in zip(offset, dset.chunks, strict=True))
        (root / key).write_bytes(raw)

    array = zarr.open_array(str(root), mode="r", zarr_format=2)

    assert array[...].tobytes() == dset[...].tobytes()
