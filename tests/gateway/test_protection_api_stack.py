"""The protection API driving the real services: snapshot an app, back the snapshot up while
watching its progress, list it from the bucket, restore it with options (and be refused by
the real preflight), delete it.

NEEDS THE FULL STACK (vessel_dev/rig/stack.py): every service its own process, real NATS, real
S3, emulated Kubernetes API servers — unlike the other protection API modules, which write
protection's records themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import grpc
import pytest

from tests.support import full_stack
from vessel.api.v1 import protection_pb2 as ppb
from vessel.api.v1 import protection_pb2_grpc as prpc
from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc
from vessel.kube.client import KubeCluster
from vessel_dev.rig.scenario import (
    APP,
    CLAIM,
    NAMESPACE,
    bound_volume_path,
    create_app_with_data,
    tree_digest,
)
from vessel_dev.rig.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
APP_ID = f"cluster-a.{NAMESPACE}.{APP}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with full_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running


async def _wait(ops: rpc.OperationServiceStub, op: pb.Operation) -> pb.Operation:
    done: pb.Operation = await ops.WaitOperation(
        pb.WaitOperationRequest(id=op.id, timeout_seconds=90)
    )
    return done


async def _app_ready(apps: rpc.AppServiceStub) -> pb.App:
    for _ in range(200):
        listed = await apps.ListApps(pb.ListAppsRequest(cluster="cluster-a"))
        found = [a for a in listed.apps if a.id == APP_ID]
        if found and found[0].claims and found[0].claims[0].volume_name:
            return found[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"app {APP_ID} was not discovered with its bound claim")


async def test_snapshot_backup_watch_list_restore_delete(stack: Stack) -> None:
    a = KubeCluster(stack.kubeconfigs["cluster-a"], "cluster-a")
    b = KubeCluster(stack.kubeconfigs["cluster-b"], "cluster-b")
    for kube in (a, b):
        await kube.create(stack.storage_class())
    before = await create_app_with_data(a)

    async with grpc.aio.insecure_channel(stack.gateway) as channel:
        ops = rpc.OperationServiceStub(channel)
        await _app_ready(rpc.AppServiceStub(channel))

        snapshots = prpc.SnapshotServiceStub(channel)
        taking = await snapshots.CreateSnapshot(
            ppb.CreateSnapshotRequest(app_id=APP_ID, bucket="default", request_id="stack-snap")
        )
        taken = await _wait(ops, taking)
        assert taken.phase == "Completed", taken.message
        snapshot = await snapshots.GetSnapshot(ppb.GetSnapshotRequest(id=taking.id))
        assert snapshot.app_id == APP_ID and [v.claim for v in snapshot.volumes] == [CLAIM]

        backing = await rpc.BackupServiceStub(channel).CreateBackup(
            pb.CreateBackupRequest(app_id=APP_ID, bucket="default", snapshot_id=snapshot.id)
        )
        stream = prpc.ProgressServiceStub(channel).WatchOperation(
            ppb.WatchOperationRequest(id=backing.id, timeout_seconds=90)
        )
        updates = [u async for u in stream]
        final = updates[-1].operation
        assert final.phase == "Completed", final.message
        progress = [u.progress for u in updates if u.HasField("progress")]
        assert progress and progress[-1].claim == CLAIM and progress[-1].bytes > 12 << 20

        catalog = prpc.BackupCatalogServiceStub(channel)
        listed = await catalog.ListBackups(ppb.ListBackupsRequest(bucket="default", app_id=APP_ID))
        (backup,) = [x for x in listed.backups if x.id == final.backup_id or x.id == backing.id]
        assert backup.error == "" and backup.cluster == "cluster-a"

        restores = rpc.RestoreServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as no_class:
            await restores.CreateRestore(
                pb.CreateRestoreRequest(
                    backup_id=backup.id,
                    bucket="default",
                    target_cluster="cluster-b",
                    namespace_mapping={NAMESPACE: "shop-snap"},
                    storage_class_mapping={"vessel-local": "no-such-class"},
                )
            )
        assert no_class.value.code() == grpc.StatusCode.INVALID_ARGUMENT, no_class.value.details()
        restoring = await restores.CreateRestore(
            pb.CreateRestoreRequest(
                backup_id=backup.id,
                bucket="default",
                target_cluster="cluster-b",
                namespace_mapping={NAMESPACE: "shop-snap"},
                exclude=[pb.ResourceFilter(kinds=["Service"])],
                existing="fail",
            )
        )
        restored = await _wait(ops, restoring)
        assert restored.phase == "Completed", restored.message
        with pytest.raises(grpc.aio.AioRpcError) as conflict:
            await restores.CreateRestore(
                pb.CreateRestoreRequest(
                    backup_id=backup.id,
                    bucket="default",
                    target_cluster="cluster-b",
                    namespace_mapping={NAMESPACE: "shop-snap"},
                    existing="fail",
                )
            )
        assert conflict.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "shop-snap" in (conflict.value.details() or "")

        target = await bound_volume_path(b, "shop-snap", CLAIM)
        assert tree_digest(target) == before

        deleting = await catalog.DeleteBackup(
            ppb.DeleteBackupRequest(bucket="default", id=backup.id)
        )
        assert (await _wait(ops, deleting)).phase == "Completed"
        listed = await catalog.ListBackups(ppb.ListBackupsRequest(bucket="default"))
        assert backup.id not in {x.id for x in listed.backups}
        dropping = await snapshots.DeleteSnapshot(ppb.DeleteSnapshotRequest(id=snapshot.id))
        assert (await _wait(ops, dropping)).phase == "Completed"
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await snapshots.GetSnapshot(ppb.GetSnapshotRequest(id=snapshot.id))
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND
