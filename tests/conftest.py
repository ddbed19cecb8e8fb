"""Shared fixtures: an isolated AWS environment and a real S3 server (SeaweedFS) on loopback."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import hdf5plugin  # noqa: F401
import pytest

# hdf5plugin first: the test files are written by h5py with plugin filters, and h5py can only
# load them when hdf5plugin registered them before netCDF4 brought its own libhdf5 in. Reading
# through refindex must not depend on that order; writing the fixtures does.
from refindex.demo.embedded_s3 import EmbeddedS3
from refindex.io.resolver import forget_resolutions
from tests.archive_server import (  # noqa: F401 (fixtures)
    _archive_server_process,
    archive_netrc,
    archive_server,
)
from tests.fault_proxy import fault_proxy  # noqa: F401 (fixture)
from tests.http_server import _http_server_process, http_server  # noqa: F401 (fixtures)

# AWS settings that could make a test reach beyond 127.0.0.1 or see a developer's setup.
_AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
)


_S3_FIXTURES = {"s3_server", "s3_bucket", "s3_env"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use the S3 server carry the ``s3`` marker, so ``-m "not s3"`` skips them."""
    for item in items:
        if _S3_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.s3)


@pytest.fixture(scope="session", autouse=True)
def _isolated_aws_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No real AWS credentials, config files or instance metadata: tests talk to loopback only."""
    empty = tmp_path_factory.mktemp("aws") / "none"
    with pytest.MonkeyPatch.context() as patch:
        for name in _AWS_VARIABLES:
            patch.delenv(name, raising=False)
        # Without this, botocore's credential chain asks 169.254.169.254 for credentials.
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        patch.setenv("AWS_CONFIG_FILE", str(empty))
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
        patch.setenv("NO_PROXY", "127.0.0.1,localhost")
        yield


@pytest.fixture(scope="session")
def s3_server() -> Iterator[EmbeddedS3]:
    """A SeaweedFS S3 server on 127.0.0.1, started once per test session (a few seconds)."""
    with EmbeddedS3() as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server: EmbeddedS3) -> str:
    """A fresh, empty bucket on ``s3_server``; its name."""
    return s3_server.create_bucket(f"test-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def s3_env(s3_server: EmbeddedS3, monkeypatch: pytest.MonkeyPatch) -> EmbeddedS3:
    """Point the standard AWS chain (credentials, region, ``AWS_ENDPOINT_URL``) at ``s3_server``
    for one test; returns the server."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    return s3_server


@pytest.fixture(autouse=True)
def _fresh_resolutions() -> None:
    """Each test resolves URLs and logs in as a new process would: nothing carried over from
    earlier tests (resolutions are shared process-wide)."""
    forget_resolutions()
