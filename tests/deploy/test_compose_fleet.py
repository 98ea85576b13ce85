"""Static checks of docker-compose.fleet.yml: a hub and two clusters, each cluster's
agents on its own leaf NATS, and no hub service holding a cluster's kubeconfig."""

from __future__ import annotations

import os
import re
from typing import Any

import pytest
import yaml

from tests.deploy.test_compose_and_chart import (
    ROOT,
    _binds,
    _command,
    _console_scripts,
    _environment,
    _is_vessel,
)
from vessel.config import VesselSettings, load_settings

FLEET = ROOT / "docker-compose.fleet.yml"
AGENT_SCRIPTS = {"vessel-discovery", "vessel-provisioner", "vessel-mover"}


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    data = yaml.safe_load(FLEET.read_text(encoding="utf-8"))
    found: dict[str, dict[str, Any]] = data["services"]
    return found


def _config(service: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> VesselSettings:
    """The service's configuration: the repo file mounted where VESSEL_CONFIG points."""
    path = _environment(service)["VESSEL_CONFIG"]
    (source,) = [s for s, t in _binds(service) if t == path]
    for name in [n for n in os.environ if n.startswith("VESSEL_")]:
        monkeypatch.delenv(name)
    return load_settings(str(ROOT / source))


def _nats_config(services: dict[str, dict[str, Any]], host: str) -> str:
    (source,) = [s for s, t in _binds(services[host]) if t == "/etc/nats/nats.conf"]
    return (ROOT / source).read_text(encoding="utf-8")


def _cluster_of(service: dict[str, Any]) -> str | None:
    command = _command(service)
    return command[command.index("--cluster") + 1] if "--cluster" in command else None


def test_every_vessel_service_runs_a_console_script(services: dict[str, Any]) -> None:
    scripts = _console_scripts()
    vessel = [n for n, s in services.items() if _is_vessel(s)]
    assert len(vessel) == 9, vessel  # 3 on the hub, 3 per cluster
    for name in vessel:
        assert _command(services[name])[0] in scripts, name
    for name, service in services.items():
        for source, _target in _binds(service):
            if source.startswith("./") and not source.startswith("./data/"):
                assert (ROOT / source).exists(), f"{name}: {source} is not in the repo"


def test_hub_services_know_no_cluster_and_mount_no_kubeconfig(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = [n for n, s in services.items() if _is_vessel(s) and _cluster_of(s) is None]
    assert sorted(hub) == ["discovery", "gateway", "protection"]
    hub_nats = _nats_config(services, "nats-hub")
    assert "domain: hub" in hub_nats and "leafnodes { port: 7422 }" in hub_nats
    for name in hub:
        settings = _config(services[name], monkeypatch)
        assert settings.clusters == [], name
        assert settings.nats_url == "nats://nats-hub:4222", name
        assert settings.nats_jetstream_domain is None, name
        assert settings.secrets_cluster in {"cluster-a", "cluster-b"}, name
        targets = {t for _s, t in _binds(services[name])}
        assert not any("kubeconfig" in t for t in targets), f"{name} mounts a kubeconfig"


def test_each_clusters_agents_reach_the_hub_through_their_own_leaf(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    by_cluster: dict[str, set[str]] = {}
    for name, service in services.items():
        cluster = _cluster_of(service)
        if not _is_vessel(service) or cluster is None:
            continue
        script = _command(service)[0]
        by_cluster.setdefault(cluster, set()).add(script)
        settings = _config(service, monkeypatch)
        (configured,) = settings.clusters
        assert (configured.id, configured.agent) == (cluster, "cluster"), name
        assert settings.nats_jetstream_domain == "hub", name
        leaf = re.fullmatch(r"nats://([a-z0-9-]+):4222", settings.nats_url)
        assert leaf and leaf[1] == f"nats-leaf-{cluster[-1]}", f"{name}: {settings.nats_url}"
        leaf_nats = _nats_config(services, leaf[1])
        assert 'url: "nats-leaf://nats-hub:7422"' in leaf_nats and "jetstream" not in leaf_nats
        targets = {t for _s, t in _binds(service)}
        assert str(configured.kubeconfig) in targets, f"{name}: its kubeconfig is not mounted"
        if script != "vessel-discovery":
            assert service.get("privileged") is True, f"{name}: node agents run privileged"
            for backend in configured.backends:
                assert str(backend.path) in targets, f"{name}: {backend.path} is not mounted"
    assert by_cluster == {"cluster-a": AGENT_SCRIPTS, "cluster-b": AGENT_SCRIPTS}


def test_the_fleet_file_is_documented_where_docker_is() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docker compose -f docker-compose.fleet.yml up --build" in readme
