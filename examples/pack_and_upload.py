"""Pack a Zarr v3 store of 4,096 small chunk files into a few tar files, upload them to an S3
server in multipart parts, and read the store back through the sidecar.

    python examples/pack_and_upload.py [DIR]

The S3 server is the embedded one (SeaweedFS on 127.0.0.1); against AWS, drop it and give
``upload_to="s3://your-bucket/prefix/"`` with your usual credentials.
"""

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import zarr

import refindex
from refindex.demo.embedded_s3 import EmbeddedS3
from refindex.io import ReadOptions
from refindex.pack import PackOptions, pack
from refindex.upload import UploadOptions


def write_store(path: Path) -> np.ndarray:
    """A 256 × 256 × 256 uint16 volume in 16³ chunks: 4,096 chunk files."""
    volume = np.arange(256**3, dtype=np.uint16).reshape(256, 256, 256)
    array = zarr.create_array(path, shape=volume.shape, chunks=(16, 16, 16), dtype="u2",
                              zarr_format=3)
    array[:] = volume
    return volume


def main(workdir: Path) -> None:
    store = workdir / "brain.zarr"
    volume = write_store(store)
    with EmbeddedS3(workdir / "s3") as server:
        server.create_bucket("archive")
        os.environ.update(server.env())  # the standard AWS chain finds its credentials
        connection = ReadOptions(endpoint_url=server.endpoint_url)
        result = pack(store, workdir / "packed", PackOptions(
            target_size=2 * 2**20, upload_to="s3://archive/brain/",
            upload=UploadOptions(part_size=5 * 2**20, connection=connection)))
        print(f"{result.files:,} files → {len(result.parts)} tar parts, uploaded in "
              f"{result.upload.requests} requests; sidecar {result.sidecar}")
        for part in result.parts:
            print(f"  {part.source.url}: {part.size:,} bytes, ETag {part.source.etag}")

        store = refindex.open_store(result.sidecar, endpoint_url=server.endpoint_url)
        read = zarr.open_array(store, mode="r")[:]
        assert np.array_equal(read, volume)
        print(f"read back {read.nbytes:,} bytes from S3: equal to the original store")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as scratch:
            main(Path(scratch))
