"""NATS and S3 in containers (testcontainers), for machines with a Docker engine.

The default rig runs the servers from the binaries the `embedded` extra installs. With
``VESSEL_TEST_CONTAINERS=1`` the same tests and the same stack run against the official
``nats`` and ``minio`` images instead, as most projects' developers expect. These classes
have the attributes of `processes.NatsServer` and `processes.S3Server` that callers use
(``url``, ``monitor_url``; ``endpoint``, ``access_key``, ``secret_key``), so nothing else
knows which one it got. testcontainers is a development dependency: imported on start.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vessel_dev.rig.processes import MissingComponent, wait_until

NATS_IMAGE = os.environ.get("VESSEL_TEST_NATS_IMAGE", "nats:2.15")
MINIO_IMAGE = os.environ.get("VESSEL_TEST_MINIO_IMAGE", "minio/minio:RELEASE.2025-04-22T22-12-26Z")
_MONITOR_PORT = 8222


def containers_wanted() -> bool:
    """Whether the rig runs its servers in containers (``VESSEL_TEST_CONTAINERS=1``)."""
    return os.environ.get("VESSEL_TEST_CONTAINERS", "").lower() in ("1", "true", "yes")


def _docker_reachable() -> None:
    try:
        import docker  # testcontainers' own client, installed with it

        docker.from_env().ping()
    except ImportError as exc:
        raise MissingComponent(
            "VESSEL_TEST_CONTAINERS=1 needs testcontainers (pip install vessel[dev])"
        ) from exc
    except Exception as exc:
        raise MissingComponent(
            f"VESSEL_TEST_CONTAINERS=1 but no Docker engine answers: {exc}"
        ) from exc


@dataclass
class NatsContainerServer:
    workdir: Path
    url: str = ""
    monitor_url: str = ""
    container: Any = None
    config: str = ""
    environ: dict[str, str] = field(default_factory=dict)

    def start(self) -> None:
        _docker_reachable()
        from testcontainers.community.nats import NatsContainer

        self.container = NatsContainer(NATS_IMAGE, management_port=_MONITOR_PORT)
        command = f"-js -m {_MONITOR_PORT}"
        if self.config:  # the same file as the local server's, mounted read-only
            path = self.workdir / "nats.conf"
            path.write_text(self.config)
            self.container.with_volume_mapping(str(path), "/etc/vessel-nats.conf", "ro")
            command += " -c /etc/vessel-nats.conf"
        for name, value in self.environ.items():
            self.container.with_env(name, value)
        self.container.with_command(command)
        self.container.start()
        host, port = self.container.nats_host_and_port()
        self.url = f"nats://{host}:{port}"
        self.monitor_url = f"http://{host}:{self.container.get_exposed_port(_MONITOR_PORT)}"

    def stop(self) -> None:
        if self.container is not None:
            self.container.stop()


@dataclass
class S3ContainerServer:
    workdir: Path
    access_key: str = field(default_factory=lambda: "vessel" + secrets.token_hex(4))
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    endpoint: str = ""
    container: Any = None

    def start(self, ready: Callable[[], bool] | None = None) -> None:
        _docker_reachable()
        from testcontainers.community.minio import MinioContainer

        self.container = MinioContainer(
            MINIO_IMAGE, access_key=self.access_key, secret_key=self.secret_key
        )
        self.container.start()
        self.endpoint = self.container.get_config()["endpoint"]
        if ready is not None:
            wait_until(ready, 60, "MinIO S3 writes")

    def stop(self) -> None:
        if self.container is not None:
            self.container.stop()
