"""App snapshots and backups taken from them, through the whole embedded stack: an app of
three claims in cluster A is snapshotted as one group, backed up from a snapshot (an
existing one, or a fresh one), incrementally the second time, and restored into cluster
B with the bytes compared."""

from __future__ import annotations

import asyncio
import errno
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.protection.bucket_catalog import read_backup
from services.provisioner.group_snapshots import GROUP_LABEL
from tests.protection import snapshot_kit as kit
from vessel.bus.nats_port import Bus
from vessel.contracts import subjects
from vessel.contracts.commands import CreateBackup, CreateRestore
from vessel.contracts.envelope import CloudEvent
from vessel.contracts.operations import Operation
from vessel.contracts.protection import CreateAppSnapshot
from vessel_dev.rig.scenario import bound_volume_path, tree_digest
from vessel_dev.rig.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

stack = pytest.fixture(scope="module")(kit.running_stack)
bus = pytest.fixture(scope="module")(kit.connected_bus)


@pytest.fixture(scope="module")
async def app(stack: Stack, bus: Bus) -> kit.App:
    return await kit.deploy_app(stack, bus)


async def events_of(bus: Bus, since: datetime, subject: str, count: int) -> list[CloudEvent]:
    seen: list[CloudEvent] = []
    async with asyncio.timeout(30):
        async for _, event in bus.tail(subject, since=since):
            seen.append(event)
            if len(seen) == count:
                return seen
    return seen


async def restore(
    stack: Stack, bus: Bus, backup_id: str, namespace: str
) -> dict[str, dict[str, str]]:
    """Restore into cluster B under `namespace`; each claim's restored tree digest."""
    await bus.publish(
        subjects.CREATE_RESTORE,
        CreateRestore(
            operation_id=f"restore-{backup_id}",
            backup_id=backup_id,
            bucket="default",
            target_cluster="cluster-b",
            namespace_mapping={kit.NAMESPACE: namespace},
        ),
    )
    done = await kit.finished(bus, f"restore-{backup_id}")
    assert done.phase == "Completed", done.message
    b = kit.cluster(stack, "cluster-b")
    return {
        claim: tree_digest(await bound_volume_path(b, namespace, claim)) for claim in kit.CLAIMS
    }


async def backup(bus: Bus, backup_id: str, snapshot_id: str | None = None) -> Operation:
    await bus.publish(
        subjects.CREATE_BACKUP,
        CreateBackup(
            operation_id=backup_id, app_id=kit.APP_ID, bucket="default", snapshot_id=snapshot_id
        ),
    )
    done = await kit.finished(bus, backup_id)
    assert done.phase == "Completed", done.message
    return done


async def test_an_app_snapshot_groups_every_claim_with_the_resources(
    stack: Stack, bus: Bus, app: kit.App
) -> None:
    since = datetime.now(UTC)
    before = kit.digests(app.paths)
    await bus.publish(
        subjects.CREATE_SNAPSHOT,
        CreateAppSnapshot(operation_id="snap-1", app_id=kit.APP_ID, bucket="default"),
    )
    op = await kit.finished(bus, "snap-1")
    assert (op.kind, op.phase, op.snapshot_id) == ("snapshot", "Completed", "snap-1"), op.message
    assert sorted((i.name, i.state) for i in op.items) == [
        (c, "Completed") for c in sorted(kit.CLAIMS)
    ]
    record = await kit.snapshot_record(bus, "snap-1")
    assert record is not None and record.phase == "Completed" and record.completed
    assert (record.cluster, record.namespace) == ("cluster-a", kit.NAMESPACE)
    assert record.resources_key == "snapshots/snap-1/resources.sealed"
    kinds = kit.archive_kinds(stack, "snap-1", record.resources_key)
    assert ("ConfigMap", "inv-config") in kinds and ("Deployment", "inv-db") in kinds
    assert sorted(v.claim for v in record.volumes) == sorted(kit.CLAIMS)

    kit.write_generation(app.paths, 2)  # the live volumes move on; the snapshot does not
    a = kit.cluster(stack, "cluster-a")
    for volume in record.volumes:
        assert tree_digest(Path(volume.path)) == before[volume.claim]
        vs = await a.get(kit.SNAPSHOT_API, "VolumeSnapshot", volume.volume_snapshot, kit.NAMESPACE)
        assert vs is not None and vs["status"]["readyToUse"] is True
        assert vs["metadata"]["labels"][GROUP_LABEL] == "snap-1"
        if stack.backend_types["cluster-a"] == "btrfs":
            with pytest.raises(OSError) as refused:
                (Path(volume.path) / "state.txt").write_text("changed")
            assert refused.value.errno == errno.EROFS

    started, ended = await events_of(bus, since, "vessel.evt.protection.snapshot.>", 2)
    assert started.type == subjects.SNAPSHOT_STARTED.type
    assert ended.type == subjects.SNAPSHOT_COMPLETED.type and ended.data["volumes"] == 3
    [group] = await events_of(bus, since, subjects.GROUP_SNAPSHOT_CREATED.filter_subject, 1)
    assert group.data["group_id"] == "snap-1" and group.data["spread_seconds"] > 0


async def test_a_backup_copies_an_existing_snapshot_not_the_live_volumes(
    stack: Stack, bus: Bus, app: kit.App
) -> None:
    kit.write_generation(app.paths, 3)
    await bus.publish(
        subjects.CREATE_SNAPSHOT,
        CreateAppSnapshot(operation_id="snap-2", app_id=kit.APP_ID, bucket="default"),
    )
    assert (await kit.finished(bus, "snap-2")).phase == "Completed"
    frozen = kit.digests(app.paths)
    kit.write_generation(app.paths, 4)

    done = await backup(bus, "backup-of-snap-2", "snap-2")
    assert done.snapshot_id == "snap-2"
    record, objects = read_backup(stack.sealed(), "backup-of-snap-2")
    assert record.snapshot_id == "snap-2" and record.namespaces == ["inventory"]
    assert ("ConfigMap", "inv-config") in [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert await restore(stack, bus, "backup-of-snap-2", "inv-from-snapshot") == frozen


async def test_a_backup_takes_a_fresh_snapshot_and_the_next_one_is_incremental(
    stack: Stack, bus: Bus, app: kit.App
) -> None:
    kit.write_generation(app.paths, 5)
    first_data = kit.digests(app.paths)
    first = await backup(bus, "backup-fresh-1")
    record = await kit.snapshot_record(bus, "backup-fresh-1")
    assert record is not None and record.phase == "Completed" and len(record.volumes) == 3

    kit.write_generation(app.paths, 6)
    second_data = kit.digests(app.paths)
    second = await backup(bus, "backup-fresh-2")
    parents = {w.claim: w.parent_snapshot for w in second.volumes}
    assert parents == {w.claim: w.snapshot_id for w in first.volumes}
    assert all(parents.values())
    assert sum(w.bytes for w in second.volumes) > 0

    assert await restore(stack, bus, "backup-fresh-1", "inv-first") == first_data
    assert await restore(stack, bus, "backup-fresh-2", "inv-second") == second_data


async def test_hooks_run_around_the_group_and_a_failed_pre_hook_stops_it(
    stack: Stack, bus: Bus, app: kit.App
) -> None:
    a = kit.cluster(stack, "cluster-a")
    await kit.running_pod(a)
    hooks = await bus.kv("hooks")
    for hook in (
        kit.hook("flush", "pre-snapshot", ["sh", "-c", "sync"]),
        kit.hook("resume", "post-snapshot", ["sh", "-c", "echo resumed"]),
    ):
        await hooks.put(f"{kit.APP_ID}.{hook.id}", hook.model_dump_json().encode())
    try:
        await bus.publish(
            subjects.CREATE_SNAPSHOT,
            CreateAppSnapshot(operation_id="snap-hooked", app_id=kit.APP_ID, bucket="default"),
        )
        op = await kit.finished(bus, "snap-hooked")
        assert op.phase == "Completed", op.message
        ran = [(i.kind, i.name, i.state) for i in op.items if i.kind == "hook"]
        assert ran == [
            ("hook", f"flush@{kit.POD}/db", "Completed"),
            ("hook", f"resume@{kit.POD}/db", "Completed"),
        ]

        failing = kit.hook("lock", "pre-snapshot", ["sh", "-c", "echo cannot lock >&2; exit 3"])
        await hooks.put(f"{kit.APP_ID}.{failing.id}", failing.model_dump_json().encode())
        await bus.publish(
            subjects.CREATE_SNAPSHOT,
            CreateAppSnapshot(operation_id="snap-refused", app_id=kit.APP_ID, bucket="default"),
        )
        op = await kit.finished(bus, "snap-refused")
        assert op.phase == "Failed" and "pre-snapshot hook failed" in op.message
        assert f"lock@{kit.POD}/db" in op.message
        record = await kit.snapshot_record(bus, "snap-refused")
        assert record is not None and record.phase == "Failed" and record.volumes == []
        listed, _ = await a.list(kit.SNAPSHOT_API, "VolumeSnapshot", kit.NAMESPACE)
        groups = {(vs["metadata"].get("labels") or {}).get(GROUP_LABEL) for vs in listed}
        assert "snap-refused" not in groups and "snap-hooked" in groups
    finally:
        for key in await hooks.keys():
            await hooks.delete(key)
