"""Restore verification on the running services: a backup verified with the CLI passes
(restored into a scratch namespace, read back, found, deleted), two verifications in one
cluster run one after the other, and after a pack is corrupted in the bucket the next one
fails naming it; each result is recorded on the backup as the API shows it.

NEEDS THE FULL STACK (vessel_dev/rig/stack.py): every service its own process, real NATS,
real S3, emulated Kubernetes API servers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import grpc
import pytest

from tests.support import backed_up_app, full_stack, vessel_cli
from vessel.api.v1 import protection_pb2 as ppb
from vessel.api.v1 import protection_pb2_grpc as prpc
from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc
from vessel.kube.client import KubeCluster
from vessel_dev.rig.scenario import APP, NAMESPACE
from vessel_dev.rig.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
APP_ID = f"cluster-a.{NAMESPACE}.{APP}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with full_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture(scope="module")
async def backup_id(stack: Stack) -> str:
    return await backed_up_app(stack, APP_ID)


def cli(stack: Stack, *args: str) -> tuple[int, str, str]:
    code, out, err = vessel_cli(stack, "", *args)
    return code, out.decode(), err


async def scratch_namespaces(stack: Stack) -> list[str]:
    kube = KubeCluster(stack.kubeconfigs["cluster-a"], "cluster-a")
    listed, _ = await kube.list("v1", "Namespace")
    return [n["metadata"]["name"] for n in listed if n["metadata"]["name"].startswith("vessel-")]


async def test_a_verification_passes_and_is_recorded(stack: Stack, backup_id: str) -> None:
    code, out, err = await asyncio.to_thread(
        cli, stack, "-o", "json", "verify", "run", APP_ID, "--bucket", "default", "--wait"
    )
    assert code == 0, err + out
    assert '"phase": "Completed"' in out and "passed: restored, every file read back" in out
    async with grpc.aio.insecure_channel(stack.gateway) as channel:
        backup = await prpc.BackupCatalogServiceStub(channel).GetBackup(
            ppb.GetBackupRequest(bucket="default", id=backup_id)
        )
    v = backup.verification
    assert v.outcome == "Passed" and v.target_cluster == "cluster-a", v
    assert v.files == 52 and v.bytes > 12 << 20 and v.resources >= 3, v
    for _ in range(100):  # the scratch copy goes (namespace deletion cascades)
        if not await scratch_namespaces(stack):
            break
        await asyncio.sleep(0.1)
    assert await scratch_namespaces(stack) == []

    code, out, _ = await asyncio.to_thread(cli, stack, "backup", "list", "--bucket", "default")
    header, row = out.splitlines()[:2]
    assert "VERIFIED" in header and "Passed" in row

    code, out, err = await asyncio.to_thread(
        cli, stack, "-o", "json", "verify", "create", APP_ID, "--bucket", "default",
        "--schedule", "weekly", "--at", "03:00", "--day", "sun", "--id", "weekly-check",
    )  # fmt: skip
    assert code == 0, err
    code, out, err = await asyncio.to_thread(cli, stack, "schedule", "get", "weekly-check")
    assert code == 0 and "verify" in out and "weekly on sun at 03:00" in out, err + out


async def test_one_verification_at_a_time_per_cluster(stack: Stack, backup_id: str) -> None:
    async with grpc.aio.insecure_channel(stack.gateway) as channel:
        verifications = prpc.VerificationServiceStub(channel)
        ops = rpc.OperationServiceStub(channel)
        first, second = [
            await verifications.CreateVerification(
                ppb.CreateVerificationRequest(app_id=APP_ID, bucket="default", backup_id=backup_id)
            )
            for _ in range(2)
        ]
        ended = [
            await ops.WaitOperation(pb.WaitOperationRequest(id=op.id, timeout_seconds=120))
            for op in (first, second)
        ]
        assert [e.phase for e in ended] == ["Completed", "Completed"], ended
        steps = [
            await ops.GetOperation(pb.GetOperationRequest(id=f"{op.id}-restore"))
            for op in (first, second)
        ]
        # the second restore began only once the first verification had ended
        assert steps[1].created.ToDatetime() >= ended[0].updated.ToDatetime()


async def test_a_corrupted_pack_fails_the_verification(stack: Stack, backup_id: str) -> None:
    store = stack.store()
    packs = [key for key in store.list("repository/data/") if key.count("/") == 3]
    assert packs
    for key in packs:
        data = bytearray(store.get_bytes(key))
        data[len(data) // 3] ^= 0xFF
        store.put_bytes(key, bytes(data))
    async with grpc.aio.insecure_channel(stack.gateway) as channel:
        verifying = await prpc.VerificationServiceStub(channel).CreateVerification(
            ppb.CreateVerificationRequest(app_id=APP_ID, bucket="default")
        )
        ended = await rpc.OperationServiceStub(channel).WaitOperation(
            pb.WaitOperationRequest(id=verifying.id, timeout_seconds=120)
        )
        assert ended.phase == "Failed", ended.message
        assert "failed: restore" in ended.message and "copy deleted" in ended.message
        backup = await prpc.BackupCatalogServiceStub(channel).GetBackup(
            ppb.GetBackupRequest(bucket="default", id=backup_id)
        )
    v = backup.verification
    assert v.outcome == "Failed" and v.operation_id == verifying.id
    assert "authentication failed" in v.message or "does not match" in v.message, v.message
    for _ in range(100):
        if not await scratch_namespaces(stack):
            break
        await asyncio.sleep(0.1)
    assert await scratch_namespaces(stack) == []
