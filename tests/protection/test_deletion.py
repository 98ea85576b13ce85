"""Deleting backups and app snapshots over real NATS, a real S3 bucket and repository, and
the emulated Kubernetes API: the catalog goes before anything else, the mover forgets the
volumes' snapshots, the operation completes on its answer, and repeating succeeds."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.mover.forget import Forgetter
from services.mover.volumes import RepositoryData
from services.protection.agents import DirectClusters
from services.protection.bucket_catalog import (
    BackupCatalog,
    VolumeEntry,
    write_catalog,
    write_resources,
)
from services.protection.context import ProtectionContext
from services.protection.deletion import DeletionFlow
from services.protection.state.operations import OperationStore
from services.protection.state.snapshots import AppSnapshotStore
from vessel.bus.nats_port import Bus, KeyValue
from vessel.contracts import subjects
from vessel.contracts.operations import Operation, VolumeWork
from vessel.contracts.protection import (
    AppSnapshotRecord,
    DeleteAppSnapshot,
    DeleteBackup,
    SnapshotVolume,
)
from vessel.contracts.subjects import Message
from vessel.kube.client import KubeCluster
from vessel.objectstore.minio_port import MinioStore
from vessel.sealed.documents import SealedStore, open_or_create_master_key
from vessel.sealed.providers.password import PasswordKey

pytestmark = pytest.mark.timeout(120)
SNAPSHOT_API = "snapshot.storage.k8s.io/v1"


def record_deletes(monkeypatch: pytest.MonkeyPatch, store: MinioStore) -> list[str]:
    """The key of every delete from now on, in order (the deletes still happen)."""
    keys: list[str] = []
    lock = threading.Lock()
    real = store.delete

    def delete(key: str) -> None:
        with lock:
            keys.append(key)
        real(key)

    monkeypatch.setattr(store, "delete", delete)
    return keys


@dataclass
class World:
    bus: Bus
    flow: DeletionFlow
    operations: OperationStore
    app_snapshots: KeyValue
    store: MinioStore
    sealed: SealedStore
    data: RepositoryData
    cluster: str
    kube: KubeCluster
    started: datetime

    async def finished(self, op_id: str) -> Operation:
        async with asyncio.timeout(20):
            while True:
                op = await self.operations.get(op_id)
                if op is not None and op.done:
                    return op
                await asyncio.sleep(0.05)

    async def events(self, message: Message, key: str, value: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []

        async def read() -> None:
            async for _, event in self.bus.tail(message.subject, since=self.started):
                if event.data.get(key) == value:
                    found.append(event.data)

        try:
            await asyncio.wait_for(read(), timeout=1.0)
        except TimeoutError:
            pass
        return found


@pytest.fixture
async def world(bus: Bus, bucket: MinioStore, kube: KubeCluster) -> AsyncIterator[World]:
    suffix = uuid.uuid4().hex[:8]
    cluster = f"c-{suffix}"
    # Documents sealed under the repository's own key, as protection opens the bucket.
    sb = SealedStore(bucket, open_or_create_master_key(bucket, "repository", PasswordKey("pw")))
    operations = OperationStore(await bus.kv(f"t_ops_{suffix}"))
    p = ProtectionContext(
        bus=bus,
        clusters=DirectClusters({cluster: kube}),
        open_bucket={"default": sb}.__getitem__,
        operations=operations,
        inventory=await bus.kv(f"t_inv_{suffix}"),
        waits=await bus.kv(f"t_waits_{suffix}"),
    )
    app_snapshots = await bus.kv(f"t_snaps_{suffix}")
    flow = DeletionFlow(p, AppSnapshotStore(app_snapshots))
    data = RepositoryData(bucket, "repository", PasswordKey("pw"))
    forgetter = Forgetter(cluster, bus, {"default": data}.__getitem__)
    # The mover of the cluster and protection's answer consumer, as the services run them.
    tasks = [
        await bus.consume(
            f"tests-mover-{cluster}",
            {subjects.FORGET_SNAPSHOTS: forgetter.on_forget},
            cluster=cluster,
        ),
        await bus.consume(
            f"tests-protection-{suffix}",
            {subjects.SNAPSHOTS_FORGOTTEN: flow.on_forgotten},
            deliver_new=True,
        ),
    ]
    yield World(
        bus, flow, operations, app_snapshots, bucket, sb, data, cluster, kube, datetime.now(UTC)
    )
    for task in tasks:
        task.cancel()


async def backed_up_volume(world: World, tmp_path: Path, name: str) -> tuple[str, int]:
    source = tmp_path / name
    source.mkdir()
    (source / "data.bin").write_bytes(os.urandom(1 << 20))
    snapshot_id, doc = await asyncio.to_thread(world.data.backup, source, None, {}, None)
    return snapshot_id, doc.bytes


async def complete_backup(world: World, tmp_path: Path, backup_id: str) -> str:
    snapshot_id, size = await backed_up_volume(world, tmp_path, backup_id)
    digest = write_resources(
        world.sealed, backup_id, [{"kind": "ConfigMap", "metadata": {"name": "x"}}]
    )
    write_catalog(
        world.sealed,
        BackupCatalog(
            backup_id=backup_id,
            app_id=f"{world.cluster}.shop.web",
            cluster=world.cluster,
            namespace="shop",
            created=world.started,
            completed=world.started,
            resources_digest=digest,
            volumes=[
                VolumeEntry(namespace="shop", claim="data", snapshot_id=snapshot_id, bytes=size)
            ],
        ),
    )
    return snapshot_id


async def test_backup_catalog_goes_first_then_resources_then_repository_data(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doomed = await complete_backup(world, tmp_path, "bk-1")
    kept = await complete_backup(world, tmp_path, "bk-2")
    deletes = record_deletes(monkeypatch, world.store)

    await world.flow.on_delete_backup(
        DeleteBackup(operation_id="del-1", backup_id="bk-1", bucket="default")
    )
    op = await world.finished("del-1")

    assert (op.kind, op.phase, op.backup_id) == ("delete-backup", "Completed", "bk-1"), op.message
    assert deletes[:3] == [
        "backups/bk-1/backup.json",
        "backups/bk-1/backup.sealed",
        "backups/bk-1/resources.sealed",
    ]
    repository_deletes = [k for k in deletes if k.startswith("repository/")]
    assert f"repository/snapshots/{doomed}" in repository_deletes
    assert any(k.startswith("repository/data/") for k in repository_deletes)  # pruned
    assert set(deletes) - set(repository_deletes) == set(deletes[:3])
    assert world.store.list("backups/bk-1/") == []
    assert world.store.exists("backups/bk-2/backup.json")
    assert world.store.exists(f"repository/snapshots/{kept}")
    (announced,) = await world.events(subjects.BACKUP_DELETED, "operation_id", "del-1")
    assert (announced["backup_id"], announced["volumes"]) == ("bk-1", 1)
    assert announced["app_id"] == f"{world.cluster}.shop.web"


async def test_deleting_a_deleted_backup_succeeds_and_repeats_are_ignored(
    world: World, tmp_path: Path
) -> None:
    await complete_backup(world, tmp_path, "bk-1")
    command = DeleteBackup(operation_id="del-1", backup_id="bk-1", bucket="default")
    await world.flow.on_delete_backup(command)
    await world.finished("del-1")
    await world.flow.on_delete_backup(command)  # redelivered after it finished
    again = DeleteBackup(operation_id="del-2", backup_id="bk-1", bucket="default")
    await world.flow.on_delete_backup(again)

    op = await world.finished("del-2")
    assert op.phase == "Completed"
    assert len(await world.events(subjects.BACKUP_DELETED, "backup_id", "bk-1")) == 2


async def test_a_failed_backup_without_catalog_forgets_what_its_operation_recorded(
    world: World, tmp_path: Path
) -> None:
    snapshot_id, _ = await backed_up_volume(world, tmp_path, "partial")
    write_resources(world.sealed, "bk-failed", [])
    await world.operations.create(
        Operation(
            id="bk-failed",
            kind="backup",
            phase="Failed",
            source_cluster=world.cluster,
            volumes=[
                VolumeWork(
                    claim="data",
                    namespace="shop",
                    transfer_id="t1",
                    state="Done",
                    snapshot_id=snapshot_id,
                ),
                VolumeWork(claim="logs", namespace="shop", transfer_id="t2", state="Failed"),
            ],
        )
    )
    await world.flow.on_delete_backup(
        DeleteBackup(operation_id="del-f", backup_id="bk-failed", bucket="default")
    )
    op = await world.finished("del-f")
    assert op.phase == "Completed", op.message
    assert not world.store.exists(f"repository/snapshots/{snapshot_id}")
    assert world.store.list("backups/bk-failed/") == []


async def test_app_snapshot_deletion_removes_volume_snapshots_archive_and_record(
    world: World,
) -> None:
    await world.kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    for name in ("snap-a-data", "snap-a-logs", "other"):
        await world.kube.create(
            {
                "apiVersion": SNAPSHOT_API,
                "kind": "VolumeSnapshot",
                "metadata": {"name": name, "namespace": "shop"},
                "spec": {"source": {"persistentVolumeClaimName": name}},
            }
        )
    world.store.put_bytes("snapshots/snap-a/resources.sealed", b"{}")
    record = AppSnapshotRecord(
        id="snap-a",
        app_id=f"{world.cluster}.shop.web",
        cluster=world.cluster,
        namespace="shop",
        bucket="default",
        resources_key="snapshots/snap-a/resources.sealed",
        phase="Completed",
        volumes=[
            SnapshotVolume(namespace="shop", claim=c, volume_snapshot=f"snap-a-{c}")
            for c in ("data", "logs")
        ],
        created=world.started,
    )
    await world.app_snapshots.put(record.id, record.model_dump_json().encode())

    await world.flow.on_delete_snapshot(
        DeleteAppSnapshot(operation_id="ds-1", snapshot_id="snap-a")
    )
    await world.flow.on_delete_snapshot(
        DeleteAppSnapshot(operation_id="ds-2", snapshot_id="snap-a")
    )

    left, _ = await world.kube.list(SNAPSHOT_API, "VolumeSnapshot", namespace="shop")
    assert [o["metadata"]["name"] for o in left] == ["other"]
    assert not world.store.exists("snapshots/snap-a/resources.sealed")
    assert await world.app_snapshots.get("snap-a") is None
    first, second = await world.operations.get("ds-1"), await world.operations.get("ds-2")
    assert first is not None and (first.phase, first.message) == (
        "Completed",
        "2 VolumeSnapshots deleted",
    )
    assert second is not None and (second.phase, second.message) == ("Completed", "already deleted")
    events = await world.events(subjects.APP_SNAPSHOT_DELETED, "snapshot_id", "snap-a")
    assert sorted(e["operation_id"] for e in events) == ["ds-1", "ds-2"]
