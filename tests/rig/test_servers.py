"""The rig's choice of servers: local binaries by default, containers on request."""

from __future__ import annotations

from pathlib import Path

import pytest

from vessel_dev.rig import servers
from vessel_dev.rig.containers import NatsContainerServer, S3ContainerServer
from vessel_dev.rig.processes import MissingComponent, NatsServer, S3Server


def test_binaries_by_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("VESSEL_TEST_CONTAINERS", raising=False)
    assert isinstance(servers.new_nats(tmp_path), NatsServer)
    assert isinstance(servers.new_s3(tmp_path), S3Server)
    assert servers.describe().startswith("local binaries")


def test_containers_on_request(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VESSEL_TEST_CONTAINERS", "1")
    assert isinstance(servers.new_nats(tmp_path), NatsContainerServer)
    assert isinstance(servers.new_s3(tmp_path), S3ContainerServer)
    assert servers.describe().startswith("containers (testcontainers): nats:")


@pytest.mark.parametrize("kind", [NatsContainerServer, S3ContainerServer])
def test_no_docker_engine_is_a_missing_component(
    kind: type[NatsContainerServer | S3ContainerServer],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    with pytest.raises(MissingComponent, match="no Docker engine answers"):
        kind(tmp_path).start()
