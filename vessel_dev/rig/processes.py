"""Local server processes: NATS with JetStream, SeaweedFS S3 and a KMS-protocol server
(moto, for tests of the aws-kms key provider), on free loopback ports.

Each server is started by pid and stopped by pid (terminate, then kill), also when the
caller fails half-way, so nothing outlives a test run.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


class MissingComponent(RuntimeError):
    """A binary or privilege the rig needs is absent (a skip for users, a failure in CI)."""


_HANDED_OUT: set[int] = set()
_LOWEST = 10_000


def _ephemeral_start() -> int:
    """Where the kernel's ephemeral ports (for outgoing connections) begin."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def free_port(below: int = 65536) -> int:
    """A free loopback port (below `below`, for servers that derive other ports from it),
    never one this process handed out before.

    The ports are bound later, by other processes. A port the kernel picked (`bind` to 0)
    is an ephemeral one, which any outgoing connection of any process may take meanwhile
    (a service's metrics port taken by another's NATS client: "address already in use").
    So ports are drawn at random below the ephemeral range, where only explicit binds go,
    and checked free."""
    top = min(below, _ephemeral_start())
    while True:
        port = _LOWEST + secrets.randbelow(top - _LOWEST)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s")


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def find_binary(name: str, package: str = "vessel[embedded]") -> str:
    """The binary beside this interpreter (a virtualenv's bin, where pip puts the servers
    of `vessel[embedded]`), else on PATH."""
    beside = Path(sys.executable).parent / name
    path = str(beside) if os.access(beside, os.X_OK) else shutil.which(name)
    if path is None:
        raise MissingComponent(f"{name!r} is not on PATH (pip install {package})")
    return path


@dataclass
class Process:
    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            start_new_session=True,
        )
        log.close()

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, grace: float = 5.0) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(grace)

    def tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class NatsServer:
    workdir: Path
    port: int = field(default_factory=free_port)
    monitor_port: int = field(default_factory=free_port)
    process: Process | None = None
    config: str = ""
    """nats-server configuration (e.g. an authorization block) on top of the flags."""
    environ: dict[str, str] = field(default_factory=dict)
    """Variables the configuration references (`$NAME`), such as passwords."""
    jetstream: bool = True
    """False for a leaf node: JetStream stays on the hub it connects to."""
    name: str = "nats"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def monitor_url(self) -> str:
        """The HTTP monitoring endpoint (`/jsz`, `/varz`), on loopback."""
        return f"http://127.0.0.1:{self.monitor_port}"

    def start(self) -> None:
        store = self.workdir / "jetstream"
        store.mkdir(parents=True, exist_ok=True)
        argv = [
            find_binary("nats-server"),
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-m",
            str(self.monitor_port),
            "-n",
            self.name,
        ]
        if self.jetstream:
            argv += ["-js", "-sd", str(store)]
        if self.config:
            path = self.workdir / f"{self.name}.conf"
            path.write_text(self.config)
            argv += ["-c", str(path)]
        env = {**os.environ, **self.environ} if self.environ else None
        self.process = Process(self.name, argv, self.workdir / f"{self.name}.log", env=env)
        self.process.start()
        wait_until(lambda: port_open(self.port), 15, "nats-server")

    def stop(self) -> None:
        if self.process:
            self.process.stop()


@dataclass
class S3Server:
    """SeaweedFS in one process (`weed mini`), S3 API only on loopback."""

    workdir: Path
    access_key: str = field(default_factory=lambda: "vessel" + secrets.token_hex(4))
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    port: int = field(default_factory=free_port)
    process: Process | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, ready: Callable[[], bool] | None = None) -> None:
        data = self.workdir / "s3-data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "s3-identities.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "vessel",
                            "credentials": [
                                {"accessKey": self.access_key, "secretKey": self.secret_key}
                            ],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        config.chmod(0o600)
        # SeaweedFS derives ports by adding 10000 to some of these: keep them low enough.
        ports = {
            flag: free_port(below=55000)
            for flag in (
                "master.port",
                "master.port.grpc",
                "volume.port",
                "volume.port.grpc",
                "filer.port",
                "filer.port.grpc",
                "s3.port.grpc",
                "admin.port",
                "admin.port.grpc",
                "webdav.port",
                "metricsPort",
                "debug.port",
            )
        }
        argv = [
            find_binary("weed"),
            "mini",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.port={self.port}",
            f"-s3.config={config}",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",  # fixed default ports: concurrent servers would collide
            "-s3.port.lance=0",
            # Every bucket is a collection with volumes of its own; the default limit (free
            # disk / volume size) runs out when a test run makes hundreds of buckets. Volumes
            # are not preallocated, so a high count costs no space.
            "-volume.max=10000",
        ]
        argv += [f"-{flag}={port}" for flag, port in ports.items()]
        self.process = Process("s3", argv, self.workdir / "s3.log")
        self.process.start()
        wait_until(lambda: port_open(self.port), 60, "SeaweedFS S3")
        if ready is not None:
            # The S3 port opens before the filer accepts writes.
            wait_until(ready, 60, "SeaweedFS S3 writes")

    def stop(self) -> None:
        if self.process:
            self.process.stop()


@dataclass
class KmsServer:
    """moto's server, of which only the KMS API is used: keys live in its memory, so
    they are gone when it stops. Any access key and region are accepted."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: Process | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        argv = [find_binary("moto_server", "moto[server]"), "-H", "127.0.0.1", "-p", str(self.port)]
        self.process = Process("kms", argv, self.workdir / "kms.log")
        self.process.start()
        wait_until(lambda: port_open(self.port), 30, "moto_server (KMS)")

    def stop(self) -> None:
        if self.process:
            self.process.stop()
