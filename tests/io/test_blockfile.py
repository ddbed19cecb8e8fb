"""RemoteFile: exact reads through cached blocks; h5py opens remote HDF5 files with it."""

import io

import h5py
import numpy as np
import pytest

from refindex.errors import SourceChangedError, SourceNotFoundError
from refindex.io import ReadEngine, ReadOptions, RemoteFile, open_container

BLOCK = 64 * 1024


@pytest.fixture
def engine():
    engine = ReadEngine(ReadOptions(block_size=BLOCK, readahead_blocks=0))
    yield engine
    engine.close_sync()


def test_random_reads_equal_the_bytes(engine, http_server, payload, random_ranges):
    remote = RemoteFile(engine, http_server.put("data.bin", payload))
    for offset, length in random_ranges(len(payload), count=100, seed=1):
        remote.seek(offset)
        assert remote.read(length) == payload[offset : offset + length]


def test_read_at_end_returns_only_what_is_left(engine, http_server, payload):
    remote = RemoteFile(engine, http_server.put("data.bin", payload))
    remote.seek(-10, io.SEEK_END)
    assert remote.read(100) == payload[-10:]
    assert remote.read(100) == b""
    assert remote.tell() == len(payload)


def test_read_all_equals_the_object(engine, http_server, payload):
    remote = RemoteFile(engine, http_server.put("data.bin", payload))
    assert remote.read() == payload


def test_blocks_are_aligned_and_cached(engine, http_server, payload):
    remote = RemoteFile(engine, http_server.put("data.bin", payload), size=len(payload))
    for offset in (10, 20, 1000, BLOCK - 2):
        remote.seek(offset)
        remote.read(4)
    assert remote.requests == 2  # block 0, then block 1 for the read across the boundary
    assert remote.bytes_fetched == 2 * BLOCK
    assert [entry[2] for entry in http_server.log] == [
        "bytes=0-0",  # the resolver's probe for redirects, once per source
        f"bytes=0-{BLOCK - 1}",
        f"bytes={BLOCK}-{2 * BLOCK - 1}",
    ]


def test_prefetch_fetches_the_blocks_of_known_places_in_one_batch(engine, http_server,
                                                                  payload):
    remote = RemoteFile(engine, http_server.put("data.bin", payload), size=len(payload))
    places = [(3 * BLOCK + 10, 100), (2 * BLOCK - 4, 8), (len(payload) - 3, 100), (7, 1)]
    remote.prefetch(places)
    fetched = remote.requests
    blocks = {index for offset, length in places
              for index in range(offset // BLOCK, (min(offset + length, len(payload)) - 1)
                                 // BLOCK + 1)}
    assert fetched == len(blocks) == 5  # blocks 0, 1, 2, 3 and the last (4)
    for offset, length in places:
        remote.seek(offset)
        assert remote.read(length) == payload[offset:offset + length]
    assert remote.requests == fetched
    remote.prefetch([(7, 1), (len(payload) + 10, 5)])  # cached, and past the end: nothing
    assert remote.requests == fetched


def test_sequential_reads_fetch_ahead(http_server, payload):
    engine = ReadEngine(ReadOptions(block_size=BLOCK, readahead_blocks=2))
    remote = RemoteFile(engine, http_server.put("data.bin", payload), size=len(payload))
    remote.read(BLOCK)
    remote.read(BLOCK)  # sequential: this miss also fetches the next two blocks
    requests = remote.requests
    remote.read(2 * BLOCK)
    assert remote.requests == requests
    engine.close_sync()


def test_cache_is_bounded(http_server, payload):
    engine = ReadEngine(ReadOptions(block_size=BLOCK, block_cache_size=2 * BLOCK))
    remote = RemoteFile(engine, http_server.put("data.bin", payload), size=len(payload))
    assert remote.read() == payload
    remote.seek(0)
    remote.read(1)
    assert remote.requests == 1 + -(-len(payload) // BLOCK)
    engine.close_sync()


def test_summary_reports_downloaded_bytes_and_requests(engine, http_server, payload):
    remote = RemoteFile(engine, http_server.put("data.bin", payload))
    remote.read(10)
    assert remote.summary == "downloaded 64.0 KiB of 300.0 KiB in 2 requests"


def test_replaced_object_raises_source_changed(engine, http_server, payload):
    url = http_server.put("data.bin", payload)
    remote = RemoteFile(engine, url)
    http_server.put("data.bin", payload[::-1])
    with pytest.raises(SourceChangedError):
        remote.read(10)


def test_h5py_opens_a_remote_hdf5_file_on_s3(s3_env, s3_server, s3_bucket, tmp_path):
    values = np.arange(50_000, dtype="f8").reshape(100, 500)
    path = tmp_path / "small.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=values, chunks=(10, 100), compression="gzip")
        f.attrs["title"] = "remote"
    url = s3_server.upload(path, s3_bucket, "small.h5")
    engine = ReadEngine(ReadOptions(block_size=BLOCK))
    with RemoteFile(engine, url) as remote, h5py.File(remote, "r") as f:
        assert f.attrs["title"] == "remote"
        np.testing.assert_array_equal(f["x"][...], values)
        assert remote.requests >= 1
    engine.close_sync()


def test_open_container_gives_a_plain_file_for_local_paths(engine, tmp_path, payload):
    path = tmp_path / "data.bin"
    path.write_bytes(payload)
    with open_container(str(path), engine) as f:
        assert not isinstance(f, RemoteFile)
        assert f.read() == payload


def test_open_container_gives_a_remote_file_for_urls(engine, http_server, payload):
    with open_container(http_server.put("data.bin", payload), engine) as f:
        assert isinstance(f, RemoteFile)
        assert f.read(3) == payload[:3]


def test_open_container_of_missing_local_file_raises_not_found(engine, tmp_path):
    with pytest.raises(SourceNotFoundError, match="absent.h5"):
        open_container(str(tmp_path / "absent.h5"), engine)


_COLLECTION_IN_THE_IO_THREAD = r'''
import gc, sys
import h5py
import refindex
from refindex.io import ReadOptions, blockfile, engine

url = sys.argv[1]
dataset = None  # an h5py object that the I/O thread makes garbage in a cycle
armed = False  # set once h5py reads through the remote file, holding its lock
original_readinto, original_read = blockfile.RemoteFile.readinto, engine.ReadEngine.read

def readinto(self, buffer):
    global armed
    armed = armed or "h5py" in sys._getframe(1).f_code.co_filename  # called back by h5py
    return original_readinto(self, buffer)

async def read(self, requests, **kwargs):
    global dataset
    if armed and dataset is not None:
        cycle = [dataset]
        cycle.append(cycle)
        dataset = None
        del cycle  # garbage now: only a collection frees it ...
        [[] for _ in range(100)]  # ... which these allocations start, in this thread
        print("garbage made on the I/O thread while h5py waits")
    return await original_read(self, requests, **kwargs)

blockfile.RemoteFile.readinto, engine.ReadEngine.read = readinto, read
with h5py.File(sys.argv[2], "r") as f:
    dataset = f["x"]
    gc.set_threshold(1, 1, 1)
    result = refindex.scan(url, read_options=ReadOptions(block_size=4096, cache_size=0))
print(sorted(result.index.arrays))
'''


def test_a_collection_on_the_io_thread_cannot_stop_a_remote_hdf5_scan(http_server, tmp_path):
    # h5py holds its lock while it reads through RemoteFile, which waits for refindex's I/O
    # thread; a garbage collection there that frees an h5py object (its finalizer takes the
    # same lock) would wait for ever. No collection runs while h5py waits on the I/O thread.
    import subprocess
    import sys

    import h5py
    import numpy as np

    path = tmp_path / "remote.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.arange(100_000), chunks=(1000,))
        for i in range(50):
            f.create_dataset(f"g{i}/v", data=np.arange(10))
    url = http_server.put("gc.h5", path.read_bytes())
    try:
        done = subprocess.run([sys.executable, "-c", _COLLECTION_IN_THE_IO_THREAD, url,
                               str(path)], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the scan hung: a collection on the I/O thread waited for h5py's lock")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "garbage made on the I/O thread" in done.stdout  # the trap was set
    assert "'x'" in done.stdout
