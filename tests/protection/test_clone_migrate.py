"""Clone and migrate across two emulated clusters through every real service: the
composite operation runs its backup and restore steps and reports each, the copy holds the
same bytes, and a migration scales the source down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support import full_stack, source_app
from vessel.bus.nats_port import Bus
from vessel.contracts import subjects
from vessel.contracts.operations import Operation
from vessel.contracts.protection import CreateAppSnapshot, CreateClone, CreateMigration
from vessel.kube.client import KubeCluster
from vessel_dev.rig.scenario import (
    APP,
    CLAIM,
    NAMESPACE,
    bound_volume_path,
    tree_digest,
)
from vessel_dev.rig.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
APP_ID = f"cluster-a.{NAMESPACE}.{APP}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with full_stack(tmp_path_factory.mktemp("mobility")) as running:
        yield running


@pytest.fixture(scope="module")
async def source(stack: Stack) -> dict[str, str]:
    """The app in cluster A with data; its digest."""
    return await source_app(stack)


@pytest.fixture
async def bus(stack: Stack) -> AsyncIterator[Bus]:
    bus = Bus(source="/clusters/test/mobility")
    await bus.connect(stack.nats.url, name="mobility-tests")
    yield bus
    await bus.close()


async def app_discovered(bus: Bus) -> None:
    inventory = await bus.kv("inventory")
    for _ in range(300):
        entry = await inventory.get(f"apps.{APP_ID}")
        if entry is not None and b'"volume_name":"pvc-' in entry.value:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{APP_ID} not discovered with a bound claim")


async def finished(bus: Bus, op_id: str, within: float = 120) -> Operation:
    operations = await bus.kv("operations")
    async with asyncio.timeout(within):
        while True:
            entry = await operations.get(op_id)
            if entry is not None:
                op = Operation.model_validate_json(entry.value)
                if op.done:
                    return op
            await asyncio.sleep(0.2)


async def copied(stack: Stack, namespace: str) -> Path:
    b = KubeCluster(stack.kubeconfigs["cluster-b"], "cluster-b")
    return await bound_volume_path(b, namespace, CLAIM)


async def test_clone_of_the_live_app_into_another_cluster(
    stack: Stack, source: dict[str, str], bus: Bus
) -> None:
    await app_discovered(bus)
    await bus.publish(
        subjects.CREATE_CLONE,
        CreateClone(
            operation_id="clone-live",
            app_id=APP_ID,
            bucket="default",
            target_cluster="cluster-b",
            namespace_mapping={NAMESPACE: "shop-clone"},
            requested_by="alice",
        ),
    )
    op = await finished(bus, "clone-live")
    assert op.phase == "Completed", op.message
    assert [(i.name, i.state) for i in op.items] == [
        ("backup", "Completed"),
        ("restore", "Completed"),
    ]
    assert op.backup_id == "clone-live-backup" and op.requested_by == "alice"
    assert tree_digest(await copied(stack, "shop-clone")) == source
    restore = await finished(bus, "clone-live-restore")
    assert restore.requested_by == "alice" and restore.target_cluster == "cluster-b"


async def test_clone_from_a_backup_only_restores(
    stack: Stack, source: dict[str, str], bus: Bus
) -> None:
    await finished(bus, "clone-live-backup")  # made by the test above
    await bus.publish(
        subjects.CREATE_CLONE,
        CreateClone(
            operation_id="clone-from-backup",
            app_id=APP_ID,
            source="backup",
            backup_id="clone-live-backup",
            bucket="default",
            target_cluster="cluster-b",
            namespace_mapping={NAMESPACE: "shop-from-backup"},
        ),
    )
    op = await finished(bus, "clone-from-backup")
    assert op.phase == "Completed", op.message
    assert [i.name for i in op.items] == ["restore"]
    assert tree_digest(await copied(stack, "shop-from-backup")) == source


async def test_clone_from_an_app_snapshot_copies_the_snapshot_not_the_live_volume(
    stack: Stack, source: dict[str, str], bus: Bus
) -> None:
    await app_discovered(bus)
    await bus.publish(
        subjects.CREATE_SNAPSHOT,
        CreateAppSnapshot(operation_id="snap-for-clone", app_id=APP_ID, bucket="default"),
    )
    snapshot = await finished(bus, "snap-for-clone")
    assert snapshot.phase == "Completed", snapshot.message
    a = KubeCluster(stack.kubeconfigs["cluster-a"], "cluster-a")
    live = await bound_volume_path(a, NAMESPACE, CLAIM)
    (live / "written-after-the-snapshot").write_text("not in the clone")
    await bus.publish(
        subjects.CREATE_CLONE,
        CreateClone(
            operation_id="clone-from-snapshot",
            app_id=APP_ID,
            source="snapshot",
            snapshot_id="snap-for-clone",
            bucket="default",
            target_cluster="cluster-b",
            namespace_mapping={NAMESPACE: "shop-from-snapshot"},
        ),
    )
    op = await finished(bus, "clone-from-snapshot")
    assert op.phase == "Completed", op.message
    assert [i.name for i in op.items] == ["backup", "restore"]
    assert tree_digest(await copied(stack, "shop-from-snapshot")) == source
    (live / "written-after-the-snapshot").unlink()


async def test_clone_from_a_snapshot_without_its_id_fails_at_once(bus: Bus) -> None:
    await bus.publish(
        subjects.CREATE_CLONE,
        CreateClone(
            operation_id="clone-no-snapshot",
            app_id=APP_ID,
            source="snapshot",
            bucket="default",
            target_cluster="cluster-b",
        ),
    )
    op = await finished(bus, "clone-no-snapshot", within=20)
    assert op.phase == "Failed" and "needs snapshot_id" in op.message
    assert await (await bus.kv("operations")).get("clone-no-snapshot-backup") is None


async def test_migration_restores_then_scales_the_source_down(
    stack: Stack, source: dict[str, str], bus: Bus
) -> None:
    await app_discovered(bus)
    await bus.publish(
        subjects.CREATE_MIGRATION,
        CreateMigration(
            operation_id="migrate-shop",
            app_id=APP_ID,
            bucket="default",
            target_cluster="cluster-b",
            namespace_mapping={NAMESPACE: "shop-moved"},
        ),
    )
    op = await finished(bus, "migrate-shop")
    assert op.phase == "Completed", op.message
    assert [(i.name, i.state) for i in op.items] == [
        ("backup", "Completed"),
        ("restore", "Completed"),
        ("scale-down", "Completed"),
    ]
    assert tree_digest(await copied(stack, "shop-moved")) == source
    a = KubeCluster(stack.kubeconfigs["cluster-a"], "cluster-a")
    deployment = await a.get("apps/v1", "Deployment", "shop-db", NAMESPACE)
    assert deployment is not None and deployment["spec"]["replicas"] == 0
    b = KubeCluster(stack.kubeconfigs["cluster-b"], "cluster-b")
    moved = await b.get("apps/v1", "Deployment", "shop-db", "shop-moved")
    assert moved is not None and moved["spec"]["replicas"] == 1


async def test_a_clone_of_an_unknown_app_fails_naming_it(bus: Bus) -> None:
    await bus.publish(
        subjects.CREATE_CLONE,
        CreateClone(
            operation_id="clone-unknown",
            app_id="cluster-a.nowhere.nothing",
            bucket="default",
            target_cluster="cluster-b",
        ),
    )
    op = await finished(bus, "clone-unknown", within=20)
    assert op.phase == "Failed" and "cluster-a.nowhere.nothing" in op.message
