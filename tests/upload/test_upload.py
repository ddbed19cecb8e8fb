"""``refindex upload`` and ``refindex pack --upload``: parallel multipart uploads to the S3
test server, with credentials or through presigned part URLs an archive hands out; parts
are retried, damaged parts detected, failed uploads aborted, and the sidecar names the
uploaded objects, which read back exactly as the original store."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import pytest
import zarr
from aiohttp import ClientSession, web
from yarl import URL

from refindex.cli import main
from refindex.errors import ContainerError, UploadError
from refindex.io import ReadOptions
from refindex.io.loop import run_sync
from refindex.io.options import MiB
from refindex.io.s3 import S3Presigner
from refindex.pack import PackOptions, PackProgress, pack
from refindex.sidecar import load_index
from refindex.upload import (
    PresignedUpload,
    UploadCounters,
    Uploader,
    UploadOptions,
    UploadResult,
    restamp_sidecar,
    upload_files,
)
from refindex.upload.exchanges import multipart_etag
from refindex.upload.options import MAX_PARTS, MIN_PART_SIZE, s3_part_size
from tests.http_server import serve_in_thread
from tests.pack.test_pack import assert_same_store, make_store

FAST = UploadOptions(backoff_base=0.01, backoff_max=0.05)


def random_file(path: Path, size: int) -> Path:
    path.write_bytes(np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8)
                     .tobytes())
    return path


def part_md5s(data: bytes, part_size: int) -> list[bytes]:
    return [hashlib.md5(data[i:i + part_size]).digest() for i in range(0, len(data), part_size)]


@pytest.fixture(scope="session")
def big_store(tmp_path_factory) -> Path:
    """A Zarr v2 store of 10,000 chunks (1 KiB each, uncompressed, random values)."""
    root = tmp_path_factory.mktemp("big") / "tiles.zarr"
    group = zarr.open_group(root, mode="w", zarr_format=2, attributes={"scale": [1, 1]})
    tiles = group.create_array("tiles", shape=(1600, 1600), chunks=(16, 16), dtype="f4",
                               compressors=None, attributes={"units": "photons"})
    tiles[:] = np.random.default_rng(3).random((1600, 1600), dtype="f4")
    return root


# --- an archive's upload desk: presigned part URLs of the S3 test server ------------------


class UploadDesk:
    """Hands out presigned multipart uploads as an archive would: ``GET /uploads?key=&size=
    &part_size=`` starts an upload on the S3 server with the desk's own credentials and
    answers the JSON document (parts, complete_url, abort_url, and ``url``: where readers
    find the object, through ``reader``)."""

    def __init__(self, s3, bucket: str, reader) -> None:
        self.s3, self.bucket, self.reader = s3, bucket, reader
        self.handed_out = 0
        self.port = 0

    def provider(self, path, size: int, part_size: int) -> dict:
        """A part URL provider (``refindex.upload.PartUrlProvider``) that asks the desk."""
        query = urlencode({"key": f"desk/{Path(path).name}", "size": size,
                           "part_size": part_size})
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/uploads?{query}") as answer:
            return json.load(answer)

    async def uploads(self, request: web.Request) -> web.Response:
        key, size = request.query["key"], int(request.query["size"])
        part_size = max(int(request.query["part_size"]), MIN_PART_SIZE)
        client = self.s3.client()
        upload_id = client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
        target = {"Bucket": self.bucket, "Key": key, "UploadId": upload_id}
        parts = [{"part_number": n, "url": client.generate_presigned_url(
                    "upload_part", Params={**target, "PartNumber": n}, ExpiresIn=600)}
                 for n in range(1, max(1, -(-size // part_size)) + 1)]
        self.handed_out += 1
        return web.json_response({
            "part_size": part_size, "parts": parts,
            "complete_url": client.generate_presigned_url(
                "complete_multipart_upload", Params=target, ExpiresIn=600),
            "abort_url": client.generate_presigned_url(
                "abort_multipart_upload", Params=target, ExpiresIn=600),
            "url": self.reader.url(self.bucket, key),
        })


@pytest.fixture
def upload_desk(s3_server, s3_bucket, archive_server, archive_netrc):
    """The desk, handing out uploads into ``s3_bucket``; readers go through the archive
    (logged in with ``archive_netrc``). No AWS credentials are in the environment."""
    desk = UploadDesk(s3_server, s3_bucket, archive_server)
    app = web.Application()
    app.router.add_get("/uploads", desk.uploads)
    with serve_in_thread(app, "upload-desk") as port:
        desk.port = port
        yield desk


# --- servers that damage or misreport parts -----------------------------------------------


class CorruptingProxy:
    """Forwards every request to the S3 server unchanged (its Host header too, so presigned
    URLs stay valid), but flips one byte of the body of the next ``corrupt`` PUTs."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.corrupt = 0
        self.statuses: list[tuple[str, int]] = []
        self._session: ClientSession | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.method == "PUT" and self.corrupt and body:
            self.corrupt -= 1
            body = bytes([body[0] ^ 0xFF]) + body[1:]
        if self._session is None:
            self._session = ClientSession(auto_decompress=False)
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in ("content-length", "transfer-encoding")}
        async with self._session.request(
                request.method, URL(self.upstream + request.raw_path, encoded=True),
                headers=headers, data=body, allow_redirects=False) as answer:
            data = await answer.read()
            kept = {k: v for k, v in answer.headers.items()
                    if k.lower() in ("etag", "content-type", "last-modified", "content-range")}
            if request.method == "HEAD":
                kept["Content-Length"] = answer.headers["Content-Length"]
        self.statuses.append((request.method, answer.status))
        return web.Response(status=answer.status, body=data or None, headers=kept)

    async def close(self, app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()


@pytest.fixture
def corrupting_proxy(s3_server):
    proxy = CorruptingProxy(s3_server.endpoint_url)
    app = web.Application(client_max_size=64 * MiB)
    app.router.add_route("*", "/{path:.*}", proxy.handle)
    app.on_cleanup.append(proxy.close)
    with serve_in_thread(app, "corrupting-proxy") as port:
        proxy.url = f"http://127.0.0.1:{port}"
        yield proxy


class MisreportingStore:
    """Takes parts at presigned-looking URLs but answers ETags that are not their MD5s (as a
    store that kept other bytes would); records aborts."""

    def __init__(self) -> None:
        self.puts = 0
        self.aborted = threading.Event()
        self.port = 0

    async def part(self, request: web.Request) -> web.Response:
        self.puts += 1
        body = await request.read()
        return web.Response(headers={"ETag": f'"{hashlib.md5(body + b"!").hexdigest()}"'})

    async def abort(self, request: web.Request) -> web.Response:
        self.aborted.set()
        return web.Response(status=204)

    def document(self, parts: int) -> dict:
        base = f"http://127.0.0.1:{self.port}"
        return {"parts": [{"part_number": n, "url": f"{base}/part/{n}?X-Amz-Signature=x"}
                          for n in range(1, parts + 1)],
                "part_size": 1024, "complete_url": f"{base}/complete",
                "abort_url": f"{base}/abort"}


@pytest.fixture
def misreporting_store():
    store = MisreportingStore()
    app = web.Application()
    app.router.add_put("/part/{n}", store.part)
    app.router.add_delete("/abort", store.abort)
    with serve_in_thread(app, "misreporting-store") as port:
        store.port = port
        yield store


# --- uploading with credentials -----------------------------------------------------------


def test_upload_to_s3_stores_the_file_exactly_in_parallel_parts(s3_env, s3_bucket, tmp_path):
    data = random_file(tmp_path / "big.bin", 12 * MiB + 5).read_bytes()

    [result] = upload_files([tmp_path / "big.bin"], f"s3://{s3_bucket}/in/",
                            FAST.replace(part_size=5 * MiB))

    stored = s3_env.client().get_object(Bucket=s3_bucket, Key="in/big.bin")
    assert stored["Body"].read() == data
    assert result.url == f"s3://{s3_bucket}/in/big.bin" and result.parts == 3
    assert result.etag == stored["ETag"] == f'"{multipart_etag(part_md5s(data, 5 * MiB))}"'
    assert result.size == len(data) and result.last_modified


@pytest.mark.slow
def test_pack_upload_read_round_trips_10000_chunks_with_credentials(big_store, s3_env,
                                                                    s3_bucket, tmp_path):
    code = main(["pack", str(big_store), "-o", str(tmp_path / "out"), "--target-size", "8MB",
                 "--part-size", "5MB", "--upload", f"s3://{s3_bucket}/tiles/"])

    assert code == 0
    sidecar = tmp_path / "out" / "tiles.refs.json"
    sources = load_index(sidecar).sources
    assert len(sources) == 2 and all(s.url.startswith(f"s3://{s3_bucket}/tiles/tiles-")
                                     and s.etag.endswith('-2"') for s in sources)
    assert_same_store(big_store, sidecar)


@pytest.mark.slow
def test_pack_upload_read_round_trips_10000_chunks_through_presigned_part_urls(
        big_store, upload_desk, tmp_path, monkeypatch):
    assert "AWS_ACCESS_KEY_ID" not in os.environ  # the desk signs; the uploader cannot
    options = PackOptions(target_size=8 * MiB, upload_to=upload_desk.provider, upload=FAST)

    result = pack(big_store, tmp_path / "out", options)

    assert upload_desk.handed_out == 2
    assert all(part.source.url.startswith("http://127.0.0.1:") and part.source.etag
               for part in result.parts)
    assert_same_store(big_store, result.sidecar)


class _HoldsTheLastFiles(PackProgress):
    """Packs the last tenth of the files only once an upload part has been sent (or after
    30 s): a part uploaded while it is written goes on; one uploaded once written waits."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.first_sent = threading.Event()
        self.files = self.total = 0

    def planned(self, files, data_bytes, parts):
        self.total = files

    def packed(self, files, nbytes):
        self.files += files
        if self.files > 0.9 * self.total and not self.first_sent.is_set():
            self.events.append("waiting" if self.first_sent.wait(30) else "timed out")

    def sent(self, path, nbytes):
        self.events.append("sent")
        self.first_sent.set()

    def part_ready(self, name, size, kept):
        self.events.append("part ready")


@pytest.mark.slow
def test_pack_upload_sends_parts_of_a_tar_while_it_is_still_being_written(
        big_store, s3_env, s3_bucket, tmp_path):
    progress = _HoldsTheLastFiles()
    options = PackOptions(target_size=64 * MiB, upload_to=f"s3://{s3_bucket}/streamed/",
                          upload=FAST.replace(part_size=5 * MiB))

    result = pack(big_store, tmp_path / "out", options, progress)

    assert len(result.parts) == 1 and result.parts[0].size > 14 * MiB
    assert "timed out" not in progress.events
    assert progress.events.index("sent") < progress.events.index("part ready")
    assert result.parts[0].source.etag.endswith('-3"')  # 3 upload parts of one tar
    assert_same_store(big_store, result.sidecar)


@pytest.mark.slow
def test_a_chunk_that_changes_while_its_part_streams_fails_the_pack_and_aborts_the_upload(
        big_store, s3_env, s3_bucket, tmp_path):
    store = tmp_path / "tiles.zarr"
    shutil.copytree(big_store, store)
    last = sorted((store / "tiles").iterdir())[-1]

    class _ChangesTheLastChunk(_HoldsTheLastFiles):
        def sent(self, path, nbytes):
            if not self.first_sent.is_set():
                last.write_bytes(last.read_bytes() + b"more")
            super().sent(path, nbytes)

    options = PackOptions(target_size=64 * MiB, upload_to=f"s3://{s3_bucket}/torn/",
                          upload=FAST.replace(part_size=5 * MiB))
    with pytest.raises(ContainerError, match="changed while packing"):
        pack(store, tmp_path / "out", options, _ChangesTheLastChunk())

    client = s3_env.client()
    assert client.list_objects_v2(Bucket=s3_bucket, Prefix="torn/").get("KeyCount", 0) == 0
    pending = client.list_multipart_uploads(Bucket=s3_bucket, Prefix="torn/")
    assert not pending.get("Uploads"), "the multipart upload was aborted"


def test_rerun_of_an_interrupted_pack_upload_keeps_what_was_uploaded(store_for_resume,
                                                                     fault_proxy, s3_env,
                                                                     s3_bucket, tmp_path):
    root, prefix = store_for_resume, f"s3://{s3_bucket}/resume/"
    upload = FAST.replace(retries=0, connection=ReadOptions(endpoint_url=fault_proxy.url))
    options = PackOptions(target_size=60_000, upload_to=prefix, upload=upload)

    class _CutTheLineAfterTheFirstUpload(PackProgress):
        def __init__(self) -> None:
            self.first_uploaded = threading.Event()

        def finished(self, result) -> None:
            self.first_uploaded.set()

        def part_ready(self, name: str, size: int, kept: bool) -> None:
            if name.endswith("-00001.tar"):
                assert self.first_uploaded.wait(30)
                fault_proxy.methods, fault_proxy.faults, fault_proxy.rate = (
                    ("PUT", "POST"), ("slowdown",), 1.0)

    with pytest.raises(UploadError, match=r"resume-0000\d\.tar.*SlowDown"):
        pack(root, tmp_path / "out", options, _CutTheLineAfterTheFirstUpload())
    fault_proxy.rate = 0.0

    result = pack(root, tmp_path / "out", options)

    first = result.parts[0]
    assert result.upload.bytes_sent == sum(part.size for part in result.parts[1:])
    assert first.source.url == prefix + first.name
    assert_same_store(root, result.sidecar)


@pytest.fixture
def store_for_resume(tmp_path) -> Path:
    return make_store(tmp_path / "resume.zarr")


# --- reading parts ahead -------------------------------------------------------------------


def test_the_next_part_is_read_while_one_is_in_flight_and_no_more(monkeypatch, tmp_path):
    from refindex.upload import uploader

    read, read_while_first_in_flight, held = [], [], []
    original = uploader._read_part

    def recording(path, offset, length):
        read.append(offset)
        return original(path, offset, length)

    monkeypatch.setattr(uploader, "_read_part", recording)

    async def part(request: web.Request) -> web.Response:
        body = await request.read()
        if not held:  # the first part to arrive is held, so it stays in flight
            held.append(request.match_info["n"])
            for _ in range(100):  # give the uploader time to read ahead (and too far)
                if len(read) >= 3:
                    break
                await asyncio.sleep(0.01)
            read_while_first_in_flight.extend(read)
        return web.Response(headers={"ETag": f'"{hashlib.md5(body).hexdigest()}"'})

    async def complete(request: web.Request) -> web.Response:
        return web.Response(text="<CompleteMultipartUploadResult/>")

    app = web.Application()
    app.router.add_put("/part/{n}", part)
    app.router.add_post("/complete", complete)
    random_file(tmp_path / "f.bin", 4 * 1024)
    with serve_in_thread(app, "slow-store") as port:
        base = f"http://127.0.0.1:{port}"
        document = {"parts": [{"part_number": n, "url": f"{base}/part/{n}"} for n in (1, 2, 3, 4)],
                    "part_size": 1024, "complete_url": f"{base}/complete"}
        [result] = upload_files([tmp_path / "f.bin"], [document], FAST.replace(concurrency=1))

    assert result.parts == 4
    # Parts 1 and 2: one in flight, the other read and ready; part 3 not read yet.
    assert sorted(read_while_first_in_flight) == [0, 1024]


# --- retries, damage, aborts ----------------------------------------------------------------


def test_a_failing_part_is_retried(fault_proxy, s3_env, s3_bucket, tmp_path):
    data = random_file(tmp_path / "f.bin", 11 * MiB).read_bytes()
    fault_proxy.methods = ("PUT",)
    fault_proxy.force("slowdown", 2)
    fault_proxy.force("reset", 1)
    options = FAST.replace(part_size=5 * MiB, connection=ReadOptions(
        endpoint_url=fault_proxy.url))

    [result] = upload_files([tmp_path / "f.bin"], f"s3://{s3_bucket}/", options)

    assert fault_proxy.injected == {"slowdown": 2, "reset": 1}
    assert fault_proxy.by_method["PUT"] == 3 + 3  # 3 parts, 3 of them sent twice
    stored = s3_env.client().get_object(Bucket=s3_bucket, Key="f.bin")["Body"].read()
    assert stored == data and result.parts == 3


def test_a_part_that_keeps_failing_aborts_the_whole_upload(fault_proxy, s3_env, s3_bucket,
                                                           tmp_path):
    random_file(tmp_path / "f.bin", 11 * MiB)
    fault_proxy.methods, fault_proxy.faults, fault_proxy.rate = ("PUT",), ("slowdown",), 1.0
    options = FAST.replace(part_size=5 * MiB, retries=2,
                           connection=ReadOptions(endpoint_url=fault_proxy.url))

    with pytest.raises(UploadError, match=r"f\.bin -> s3://.*/f\.bin: part \d of 3 .*"
                                          r"SlowDown.*gave up after 3 attempts"):
        upload_files([tmp_path / "f.bin"], f"s3://{s3_bucket}/", options)

    client = s3_env.client()
    assert not client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads")
    assert not client.list_objects_v2(Bucket=s3_bucket).get("Contents")


def test_an_upload_refused_for_rotated_credentials_reads_them_anew_and_goes_on(
        s3_env, s3_bucket, tmp_path, monkeypatch):
    data = random_file(tmp_path / "f.bin", 6 * MiB).read_bytes()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "the-secret-before-rotation")
    S3Presigner(ReadOptions()).sign("GET", f"s3://{s3_bucket}/f.bin")  # the process keeps it
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_env.secret_key)  # rotated

    async def upload() -> tuple[UploadResult, UploadCounters]:
        async with Uploader(FAST.replace(part_size=5 * MiB)) as uploader:
            return await uploader.upload(tmp_path / "f.bin", f"s3://{s3_bucket}/f.bin"), \
                uploader.counters

    result, counters = run_sync(upload())

    assert counters.retries == 1  # the first request (403 SignatureDoesNotMatch), signed anew
    assert s3_env.client().get_object(Bucket=s3_bucket, Key="f.bin")["Body"].read() == data
    assert result.parts == 2


def test_an_expired_presigned_part_url_fails_at_once_with_a_hint_and_aborts(upload_desk,
                                                                           tmp_path):
    random_file(tmp_path / "f.bin", 1000)
    document = upload_desk.provider(tmp_path / "f.bin", 1000, MIN_PART_SIZE)
    # Expired in 2001 (so its signature no longer matches either): refused with 403.
    document["parts"][0]["url"] = re.sub(r"Expires=\d+", "Expires=1000000000",
                                         document["parts"][0]["url"])

    with pytest.raises(UploadError, match=r"f\.bin -> .*part 1 of 1 .*access denied \(HTTP "
                                          r"403\).*has the presigned URL expired.*\(gave up "
                                          r"after 1 attempt\)"):
        upload_files([tmp_path / "f.bin"], [document], FAST)

    pending = upload_desk.s3.client().list_multipart_uploads(Bucket=upload_desk.bucket)
    assert not pending.get("Uploads"), "the multipart upload was aborted"


def test_an_upload_gives_up_at_its_deadline_and_aborts(fault_proxy, s3_env, s3_bucket,
                                                      tmp_path):
    random_file(tmp_path / "f.bin", 1000)
    fault_proxy.methods, fault_proxy.faults, fault_proxy.rate = ("PUT",), ("slowdown",), 1.0
    options = FAST.replace(retries=10_000, deadline=1.0,
                           connection=ReadOptions(endpoint_url=fault_proxy.url))
    started = time.monotonic()

    with pytest.raises(UploadError, match=r"f\.bin -> s3://.*part 1 of 1 .*SlowDown.*\(gave up "
                                          r"after \d+ attempts, at the deadline of 1 s\)"):
        upload_files([tmp_path / "f.bin"], f"s3://{s3_bucket}/", options)

    assert time.monotonic() - started < 3
    assert not s3_env.client().list_multipart_uploads(Bucket=s3_bucket).get("Uploads")


def test_a_part_damaged_on_the_way_is_refused_by_its_checksum_and_sent_again(
        corrupting_proxy, s3_env, s3_bucket, tmp_path):
    data = random_file(tmp_path / "f.bin", 6 * MiB).read_bytes()
    corrupting_proxy.corrupt = 1
    options = FAST.replace(part_size=5 * MiB, connection=ReadOptions(
        endpoint_url=corrupting_proxy.url))

    upload_files([tmp_path / "f.bin"], f"s3://{s3_bucket}/", options)

    assert ("PUT", 400) in corrupting_proxy.statuses  # BadDigest: the server checked MD5
    stored = s3_env.client().get_object(Bucket=s3_bucket, Key="f.bin")["Body"].read()
    assert stored == data


def test_a_part_damaged_every_time_fails_naming_the_part_and_the_checksum(
        corrupting_proxy, s3_env, s3_bucket, tmp_path):
    random_file(tmp_path / "f.bin", 1000)
    corrupting_proxy.corrupt = 10**6
    options = FAST.replace(retries=1, connection=ReadOptions(endpoint_url=corrupting_proxy.url))

    with pytest.raises(UploadError, match=r"f\.bin.*part 1 of 1 .*BadDigest.*differ from the "
                                          r"checksum sent"):
        upload_files([tmp_path / "f.bin"], f"s3://{s3_bucket}/", options)


def test_a_stored_part_whose_etag_is_not_its_md5_is_detected_and_the_upload_aborted(
        misreporting_store, tmp_path):
    random_file(tmp_path / "f.bin", 3000)
    document = misreporting_store.document(parts=3)

    with pytest.raises(UploadError, match=r"part \d of 3.*ETag .* is not the MD5 .* stored "
                                          r"part differs"):
        upload_files([tmp_path / "f.bin"], [document], FAST.replace(retries=1))

    assert misreporting_store.aborted.is_set()
    assert misreporting_store.puts >= 2  # each damaged part was sent again once


# --- presigned upload documents -------------------------------------------------------------


@pytest.mark.parametrize(("change", "message"), [
    ({"parts": []}, r"'parts' must be a non-empty list"),
    ({"parts": [{"part_number": 1, "url": "http://h/1"}, {"part_number": 3, "url": "http://h/3"}]},
     r"part numbers must run from 1 to 2 without gaps"),
    ({"parts": [{"part_number": 1, "url": "ftp://h/1"}]}, r"integer 'part_number' >= 1 and an "
                                                          r"http\(s\) 'url'"),
    ({"complete_url": None}, r"'complete_url' must be an http\(s\) URL"),
    ({"part_size": -5}, r"'part_size' must be a positive number of bytes"),
])
def test_a_malformed_presigned_document_is_refused_naming_the_field(change, message):
    document = {"parts": [{"part_number": 1, "url": "https://h/1"}],
                "complete_url": "https://h/done", **change}

    with pytest.raises(UploadError, match=rf"up\.json: .*{message}"):
        PresignedUpload.from_document(document, "up.json")


def test_presigned_parts_that_do_not_cut_the_file_exactly_are_refused(tmp_path):
    random_file(tmp_path / "f.bin", 2500)
    document = {"part_size": 1000, "parts": [{"part_number": 1, "url": "http://127.0.0.1:9/1"},
                                             {"part_number": 2, "url": "http://127.0.0.1:9/2"}],
                "complete_url": "http://127.0.0.1:9/done"}

    with pytest.raises(UploadError, match=r"2,500 bytes in parts of 1,000 bytes take 3 parts, "
                                          r"but the presigned upload has 2 part URLs"):
        upload_files([tmp_path / "f.bin"], [document])


def test_s3_parts_are_at_least_5_mib_and_never_more_than_10000():
    assert s3_part_size(100, 1024) == MIN_PART_SIZE
    part = s3_part_size(1_000_000 * MiB, 64 * MiB)
    assert part % MiB == 0 and -(-1_000_000 * MiB // part) <= MAX_PARTS
    assert s3_part_size(640 * MiB, 64 * MiB) == 64 * MiB


# --- the command and re-stamping ------------------------------------------------------------


def test_upload_command_to_s3_restamps_the_sidecar(s3_env, s3_bucket, tmp_path, capsys):
    root = make_store(tmp_path / "cells.zarr")
    packed = pack(root, tmp_path / "out", PackOptions(target_size=30_000))
    tars = [str(part.path) for part in packed.parts]

    code = main(["upload", *tars, "--to", f"s3://{s3_bucket}/cells", "--concurrency", "4",
                 "--sidecar", str(packed.sidecar)])

    assert code == 0
    assert f"uploaded {len(tars)} files" in capsys.readouterr().err
    sources = load_index(packed.sidecar).sources
    assert [s.url for s in sources] == [f"s3://{s3_bucket}/cells/{Path(t).name}" for t in tars]
    assert all(s.etag and s.last_modified for s in sources)
    assert_same_store(root, packed.sidecar)


def test_upload_command_through_presigned_documents(upload_desk, tmp_path):
    root = make_store(tmp_path / "cells.zarr")
    packed = pack(root, tmp_path / "out", PackOptions(target_size=10**9))
    tar = packed.parts[0].path
    (tmp_path / "doc.json").write_text(json.dumps(
        upload_desk.provider(tar, tar.stat().st_size, 5 * MiB)))

    code = main(["upload", str(tar), "--presigned", str(tmp_path / "doc.json"),
                 "--sidecar", str(packed.sidecar), "-o", str(tmp_path / "remote.refs.json")])

    assert code == 0
    assert load_index(tmp_path / "remote.refs.json").sources[0].url.startswith("http://")
    assert_same_store(root, tmp_path / "remote.refs.json")


def test_restamping_refuses_a_sidecar_of_another_version_of_the_file(s3_env, s3_bucket,
                                                                     tmp_path):
    root = make_store(tmp_path / "cells.zarr")
    packed = pack(root, tmp_path / "out", PackOptions(target_size=10**9))
    tar = packed.parts[0].path
    with open(tar, "ab") as grown:
        grown.write(b"\0" * 10240)  # a tar with one more empty record: another file now
    results = upload_files([tar], f"s3://{s3_bucket}/", FAST)

    with pytest.raises(UploadError, match=r"cells-00000\.tar: the sidecar records [\d,]+ "
                                          r"bytes, the uploaded file has [\d,]+"):
        restamp_sidecar(packed.sidecar, results)


def test_upload_command_wants_one_presigned_document_per_file(tmp_path, capsys):
    random_file(tmp_path / "a.bin", 10)
    random_file(tmp_path / "b.bin", 10)
    (tmp_path / "doc.json").write_text(json.dumps(
        {"parts": [{"part_number": 1, "url": "http://127.0.0.1:9/1"}],
         "complete_url": "http://127.0.0.1:9/done"}))

    code = main(["upload", str(tmp_path / "a.bin"), str(tmp_path / "b.bin"),
                 "--presigned", str(tmp_path / "doc.json")])

    assert code == 2
    assert "2 files but 1 --presigned documents" in capsys.readouterr().err
