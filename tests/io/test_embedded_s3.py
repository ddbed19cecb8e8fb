"""EmbeddedS3: a real SeaweedFS on loopback that starts, serves and stops cleanly."""

import os
import socket

import botocore.session
import pytest

from refindex.demo.embedded_s3 import EmbeddedS3


def test_env_points_the_aws_chain_at_the_server(s3_server):
    env = s3_server.env()
    assert env["AWS_ENDPOINT_URL"] == s3_server.endpoint_url
    assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    assert env["AWS_ACCESS_KEY_ID"] == s3_server.access_key


def test_uploaded_object_reads_back_through_the_aws_chain(s3_env, s3_bucket, tmp_path):
    path = tmp_path / "hello.txt"
    path.write_bytes(b"hello, seaweed")
    assert s3_env.upload(path, s3_bucket, "a/hello.txt") == f"s3://{s3_bucket}/a/hello.txt"
    client = botocore.session.get_session().create_client("s3")  # endpoint from AWS_ENDPOINT_URL
    body = client.get_object(Bucket=s3_bucket, Key="a/hello.txt", Range="bytes=7-13")["Body"]
    assert body.read() == b"seaweed"


@pytest.mark.slow
def test_stop_ends_the_process_and_frees_the_port(tmp_path):
    server = EmbeddedS3(tmp_path / "s3").start()
    port, pid = server.ports["s3.port"], server._process.pid
    server.stop()
    with socket.socket() as sock:
        # Connections the server closed may linger in TIME_WAIT; a listener would not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        pass
    else:
        raise AssertionError(f"weed process {pid} still exists")
