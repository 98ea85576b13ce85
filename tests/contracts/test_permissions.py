"""The NATS permissions generated for each service cover what its code publishes, and no
more than the subject table says it sends."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from vessel.contracts import permissions, subjects
from vessel.contracts.message import Message

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = {name: m for name, m in vars(subjects).items() if isinstance(m, Message)}


def allows(patterns: tuple[str, ...], subject: str) -> bool:
    """NATS subject matching: `*` one token, `>` the rest."""
    tokens = subject.split(".")
    for pattern in patterns:
        parts = pattern.split(".")
        if parts[-1] == ">" and len(tokens) >= len(parts):
            parts, candidate = parts[:-1], tokens[: len(parts) - 1]
        elif len(parts) == len(tokens):
            candidate = tokens
        else:
            continue
        if all(p in ("*", t) for p, t in zip(parts, candidate, strict=True)):
            return True
    return False


def referenced(service: str) -> tuple[set[str], set[str]]:
    """(messages named anywhere in the service, messages it passes to `publish`)."""
    named, published = set(), set()
    for path in (ROOT / "services" / service).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "subjects"
                and node.attr in MESSAGES
            ):
                named.add(node.attr)
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "publish":
                first = node.args[0] if node.args else None
                if isinstance(first, ast.Attribute) and first.attr in MESSAGES:
                    published.add(first.attr)
    return named, published


@pytest.mark.parametrize("service", permissions.SERVICES)
def test_what_a_service_publishes_is_allowed(service: str) -> None:
    allowed = permissions.for_service(service).publish
    _, published = referenced(service)
    assert published, f"no publish found in {service}: the scan is broken"
    refused = [n for n in published if not allows(allowed, MESSAGES[n].filter_subject)]
    assert refused == []


@pytest.mark.parametrize("service", permissions.SERVICES)
def test_every_command_a_service_names_is_its_own_or_one_it_sends(service: str) -> None:
    named, _ = referenced(service)
    commands = {n for n in named if MESSAGES[n].kind == "command"}
    own = f"vessel.cmd.{service}."
    sends = {m.type for m in permissions.SENDS[service]}
    stray = [
        n
        for n in commands
        if not MESSAGES[n].subject.startswith(own) and MESSAGES[n].type not in sends
    ]
    assert stray == []


def test_only_protection_may_destroy_backup_data() -> None:
    forget = subjects.FORGET_SNAPSHOTS.subject_for("c1")
    for service in permissions.SERVICES:
        publish = permissions.for_service(service).publish
        assert allows(publish, forget) == (service == "protection"), service
        assert allows(publish, "vessel.cmd.mover.c1.backup") == (service == "protection")
    assert not allows(permissions.for_service("gateway").publish, "$KV.operations.op-1")
    assert allows(permissions.for_service("gateway").publish, "$KV.requests.op.op-1")


def test_the_authorization_block_holds_no_secret() -> None:
    block = permissions.authorization()
    for service in permissions.SERVICES:
        assert f"{{user: {service}, password: ${permissions.password_variable(service)}," in block
    assert 'password: "' not in block


def test_an_unknown_service_is_named() -> None:
    with pytest.raises(ValueError, match="unknown service 'hub'"):
        permissions.for_service("hub")


def test_a_clusters_leaf_carries_only_what_its_agents_may_say_about_it() -> None:
    leaf = permissions.leaf_node("cluster-a")
    for allowed in (
        subjects.VOLUME_PROVISIONED.subject_for("cluster-a"),
        subjects.TRANSFER_COMPLETED.subject_for("cluster-a"),
        subjects.APP_CHANGED.subject_for("cluster-a"),
        "$JS.hub.API.$KV.volumes.cluster-a.pvc-1",
        "$JS.hub.API.$KV.transfers.cluster-a.backup-1-data",
        "$JS.hub.API.$KV.inventory.apps.cluster-a.shop.shop",
        "$JS.hub.API.$KV.clusters.cluster-a",
        "vessel.xfer.cluster-b.open",  # a direct transfer to another cluster's mover
    ):
        assert allows(leaf.publish, allowed), allowed
    for refused in (
        subjects.VOLUME_PROVISIONED.subject_for("cluster-b"),
        subjects.TRANSFER_COMPLETED.subject_for("cluster-b"),
        subjects.APP_CHANGED.subject_for("cluster-b"),
        subjects.VOLUME_PROVISIONED.legacy_subject,
        "vessel.evt.protection.backup.completed",
        "vessel.cmd.protection.backup.delete",
        subjects.FORGET_SNAPSHOTS.subject_for("cluster-a"),
        "$KV.operations.op-1",
        "$JS.hub.API.$KV.operations.op-1",
        "$JS.hub.API.$KV.volumes.cluster-b.pvc-1",
        "$JS.hub.API.$KV.inventory.apps.cluster-b.shop.shop",
        "$JS.hub.API.$KV.clusters.cluster-b",
        "$JS.hub.API.$KV.clusters.cluster-a-and-more",
    ):
        assert not allows(leaf.publish, refused), refused
    assert allows(leaf.subscribe, "vessel.query.provisioner.cluster-a.volumes")
    assert allows(leaf.subscribe, "vessel.query.agent.cluster-a.get")
    assert allows(leaf.subscribe, "vessel.xfer.cluster-a.open")
    for refused in (
        "vessel.query.protection.catalog",
        "vessel.query.provisioner.cluster-b.volumes",
        "vessel.query.agent.cluster-b.get",
        "vessel.query.discovery.apps",
        "vessel.xfer.cluster-b.open",
    ):
        assert not allows(leaf.subscribe, refused), refused


def test_on_the_hub_a_service_says_what_it_may_about_every_cluster() -> None:
    mover = permissions.for_service("mover")
    assert allows(mover.publish, subjects.TRANSFER_COMPLETED.subject_for("any"))
    assert allows(mover.subscribe, "vessel.xfer.any.open")
    assert allows(permissions.for_service("discovery").subscribe, "vessel.query.agent.any.get")
    assert allows(permissions.for_service("protection").publish, "vessel.query.agent.any.exec")


def test_the_printed_blocks_for_a_hub_and_a_clusters_leaf(
    capsys: pytest.CaptureFixture[str],
) -> None:
    permissions.main(["--leaves", "prod-eu1,prod-us1"])
    hub = capsys.readouterr().out
    for cluster in ("prod-eu1", "prod-us1"):
        variable = permissions.leaf_password_variable(cluster)
        assert f"{{user: {cluster}, password: ${variable}," in hub
    assert "{user: gateway," in hub and 'password: "' not in hub
    permissions.main(["--cluster", "prod-eu1"])
    leaf = capsys.readouterr().out
    assert "{user: gateway," not in leaf and "{user: protection," not in leaf
    assert '"vessel.evt.mover.prod-eu1.>"' in leaf and "prod-us1" not in leaf
