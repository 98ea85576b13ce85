"""Operations listed and canceled through the real gateway over TLS, with protection's
backup and cancel flows and a mover running in-process on real NATS, real S3 and the
Kubernetes API emulator: a canceled backup ends Canceled, its running transfer stops with
error "canceled", late transfer results change nothing, and no backup.json is written."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from services.gateway.main import build_gateway
from services.mover.cancels import Cancels
from services.mover.repo.format import SnapshotDoc
from services.mover.repo.progress import Progress
from services.mover.transfers import Mover
from services.mover.volumes import ProgressFn, RepositoryData
from services.protection.agents import DirectClusters
from services.protection.backup import BackupFlow
from services.protection.bucket_catalog import write_snapshot_resources
from services.protection.cancel import CancelFlow
from services.protection.context import ProtectionContext
from services.protection.state.operations import OperationStore
from tests.gateway.harness import ADMIN_ENV, ADMIN_TOKEN, Pki, Running, bearer, issue, make_settings
from tests.provisioner.lab import wait_for
from tests.support import sealed
from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc
from vessel.bus.nats_port import Bus
from vessel.contracts import state, subjects
from vessel.contracts.activity import BUCKET as ACTIVITY_BUCKET
from vessel.contracts.activity import ActivityRecord
from vessel.contracts.commands import CreateBackup
from vessel.contracts.events import AppRecord, BackupEvent, TransferResult
from vessel.contracts.models import ClaimInfo
from vessel.contracts.operations import Operation, Phase, now
from vessel.contracts.protection import AppSnapshotRecord, SnapshotVolume
from vessel.kube.client import KubeCluster
from vessel.objectstore.minio_port import MinioStore
from vessel.sealed.providers.password import PasswordKey
from vessel.stopping import cancel_and_wait
from vessel_dev.emulators.kube import KubeEmulator
from vessel_dev.rig.processes import NatsServer, S3Server

RUN = uuid.uuid4().hex[:6]
BUSY, IDLE = f"busy-{RUN}", f"idle-{RUN}"
"""Clusters: BUSY has a (slow) mover, IDLE none."""


class SlowData:
    """The mover's data plane, held back until released: a transfer that is still running
    when the test cancels it. Once released, the real repository does the work."""

    def __init__(self, real: RepositoryData) -> None:
        self.real = real
        self.started = threading.Event()
        self.release = threading.Event()

    def backup(
        self,
        source: Path,
        parent: str | None,
        tags: dict[str, str],
        progress: ProgressFn | None,
        parent_source: Path | None = None,
    ) -> tuple[str, SnapshotDoc]:
        self.started.set()
        while not self.release.wait(0.05):
            if progress is not None:
                progress(Progress(files=1, bytes=1))
        return self.real.backup(source, parent, tags, progress, parent_source)

    def restore(self, snapshot_id: str, target: Path, progress: ProgressFn | None) -> Any:
        return self.real.restore(snapshot_id, target, progress)


@dataclass
class World:
    gateway: Running
    channel: grpc.aio.Channel
    bus: Bus
    store: MinioStore
    p: ProtectionContext
    backups: BackupFlow
    data: SlowData
    source: Path
    tokens: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)


def app(cluster: str, pv: str) -> AppRecord:
    return AppRecord(
        cluster=cluster,
        namespace="shop",
        name="web",
        grouping="label",
        state="Available",
        claims=[ClaimInfo(name="data", requested_bytes=1 << 20, volume_name=pv, phase="Bound")],
    )


@pytest.fixture(scope="module")
async def world(
    nats_server: NatsServer,
    s3_server: S3Server,
    pki: Pki,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[World]:
    tmp = Path(tmp_path_factory.mktemp("cancel"))
    patch = pytest.MonkeyPatch()
    patch.setenv("VESSEL_TEST_CANCEL_S3_ACCESS", s3_server.access_key)
    patch.setenv("VESSEL_TEST_CANCEL_S3_SECRET", s3_server.secret_key)
    patch.delenv("VESSEL_CONFIG", raising=False)
    store = MinioStore(
        s3_server.endpoint, f"cancel-{RUN}", s3_server.access_key, s3_server.secret_key
    )
    store.ensure_bucket()
    emulator = KubeEmulator()
    emulator.start()
    emulator.write_kubeconfig(tmp / "kubeconfig")
    kube = KubeCluster(tmp / "kubeconfig", "cancel")
    source = tmp / "volume"
    source.mkdir()
    (source / "file").write_bytes(b"data" * 1000)
    pv = f"pv-{RUN}"
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": pv},
            "spec": {
                "capacity": {"storage": "1Mi"},
                "accessModes": ["ReadWriteOnce"],
                "hostPath": {"path": str(source)},
            },
        }
    )
    bus = Bus(source="/clusters/test/gateway-cancel")
    await bus.connect(nats_server.url, name="gateway-cancel")
    inventory = await bus.kv("inventory")
    for cluster in (BUSY, IDLE):
        record = app(cluster, pv)
        await inventory.put(f"apps.{record.id}", record.model_dump_json().encode())
    sb = sealed(store)
    p = ProtectionContext(
        bus=bus,
        clusters=DirectClusters({BUSY: kube, IDLE: kube}),
        open_bucket=lambda name: sb,
        operations=OperationStore(
            await bus.kv("operations"), activity=await bus.kv(ACTIVITY_BUCKET)
        ),
        inventory=inventory,
        waits=await bus.kv("restore_waits"),
    )
    backups, cancels = BackupFlow(p), CancelFlow(p)

    async def on_transfer(result: TransferResult) -> None:
        op = await p.operations.get(result.operation_id)
        if op is not None and op.kind == "backup":
            await backups.on_transfer(result)

    async def on_completed(event: BackupEvent) -> None:
        if event.operation_id.endswith(RUN):
            await cancels.on_backup_completed(event)

    data = SlowData(RepositoryData(store, "repository", PasswordKey("test-password")))
    mover = Mover(
        BUSY,
        bus,
        await bus.kv(state.TRANSFERS.name),
        lambda _: data,
        Cancels(await bus.kv(state.CANCELED_OPERATIONS.name), BUSY),
    )
    assert mover.cancels is not None
    protection_events = {
        subjects.TRANSFER_COMPLETED: on_transfer,
        subjects.TRANSFER_FAILED: on_transfer,
        subjects.BACKUP_COMPLETED: on_completed,
    }
    durables: list[tuple[str, str, Any, str | None, bool]] = [
        ("commands", f"tests-cancel-{RUN}", {subjects.CANCEL_OPERATION: cancels.on_command},
         None, False),
        ("events", f"tests-cancel-evt-{RUN}", protection_events, None, True),
        ("commands", f"tests-cancel-mover-{RUN}", {subjects.MOVE_TO_BUCKET: mover.to_bucket},
         BUSY, False),
        ("events", f"tests-cancel-mover-evt-{RUN}",
         {subjects.OPERATION_CANCELED: mover.cancels.on_canceled}, None, True),
    ]  # fmt: skip
    tasks = [
        await bus.consume(name, handlers, cluster=cluster, deliver_new=new)
        for _, name, handlers, cluster, new in durables
    ]
    settings = make_settings(
        tls={"cert_file": str(pki.server_cert), "key_file": str(pki.server_key)},
        clusters=[BUSY, IDLE],
        buckets=[
            {
                "name": "default",
                "endpoint": s3_server.endpoint,
                "bucket": store.bucket,
                "access_key_env": "VESSEL_TEST_CANCEL_S3_ACCESS",
                "secret_key_env": "VESSEL_TEST_CANCEL_S3_SECRET",
            }
        ],
    )
    built = await build_gateway(settings, bus, environ={ADMIN_ENV: ADMIN_TOKEN})
    await built.start()
    gateway = Running(built, pki)
    channel = gateway.channel()
    w = World(gateway, channel, bus, store, p, backups, data, source)
    for label, role, namespaces in (
        ("member", "member", []),
        ("viewer", "viewer", []),
        ("member-other", "member", ["other"]),
    ):
        w.names[label], w.tokens[label] = await issue(
            channel, ADMIN_TOKEN, role, namespaces=namespaces
        )
    try:
        yield w
    finally:
        data.release.set()
        await gateway.close()
        await cancel_and_wait(tasks)
        for stream, name, *_ in durables:
            stream_name = (
                subjects.COMMANDS_STREAM if stream == "commands" else subjects.EVENTS_STREAM
            )
            await bus.js.delete_consumer(stream_name, name)
        tokens = await bus.kv("tokens")
        for key in await tokens.keys():
            await tokens.delete(key)
        await bus.close()
        emulator.stop()
        patch.undo()


async def start_backup(w: World, cluster: str, tag: str, requested_by: str) -> Operation:
    """A backup copying a completed app snapshot (its resources archived, its volume's
    read-only data at `source`); the transfer is published at once."""
    op_id, snapshot_id = f"backup-{tag}-{RUN}", f"snap-{tag}-{RUN}"
    key = write_snapshot_resources(w.p.open_bucket("default"), snapshot_id, [])
    record = AppSnapshotRecord(
        id=snapshot_id,
        app_id=f"{cluster}.shop.web",
        cluster=cluster,
        namespace="shop",
        bucket="default",
        resources_key=key,
        phase="Completed",
        volumes=[
            SnapshotVolume(namespace="shop", claim="data", volume_snapshot="vs", path=str(w.source))
        ],
        created=now(),
    )
    records = await w.bus.kv("app_snapshots")
    await records.put(snapshot_id, record.model_dump_json().encode())
    await w.backups.on_command(
        CreateBackup(
            operation_id=op_id,
            app_id=f"{cluster}.shop.web",
            bucket="default",
            snapshot_id=snapshot_id,
            requested_by=requested_by,
        )
    )
    op = await w.p.operations.get(op_id)
    assert op is not None and op.phase == "InProgress" and op.volumes, op
    return op


async def cancel(w: World, op_id: str, token: str) -> pb.Operation:
    return await rpc.OperationServiceStub(w.channel).CancelOperation(
        pb.CancelOperationRequest(id=op_id), metadata=bearer(token)
    )


def catalog_exists(w: World, op_id: str) -> bool:
    return w.store.exists(f"backups/{op_id}/backup.json")


async def activity_of(w: World, op_id: str) -> ActivityRecord:
    kv = await w.bus.kv(ACTIVITY_BUCKET)
    for key in await kv.keys():
        if key.endswith(f".{op_id}"):
            entry = await kv.get(key)
            assert entry is not None
            return ActivityRecord.model_validate_json(entry.value)
    raise AssertionError(f"no activity record of {op_id}")


async def test_a_running_transfer_stops_and_the_backup_ends_canceled(world: World) -> None:
    op = await start_backup(world, BUSY, "slow", world.names["member"])
    assert await asyncio.to_thread(world.data.started.wait, 10), "the mover never started"
    canceled = await cancel(world, op.id, world.tokens["member"])
    assert canceled.phase == "Canceled"
    assert canceled.message == f"canceled by {world.names['member']}"
    transfers = await world.bus.kv("transfers")

    async def stopped() -> TransferResult | None:
        entry = await transfers.get(f"{BUSY}.{op.id}-data")
        return TransferResult.model_validate_json(entry.value) if entry else None

    result = await wait_for(stopped, "the canceled transfer's result")
    assert result.error == "canceled"
    world.data.release.set()  # the abandoned copy may now end: its result is dropped
    await asyncio.sleep(0.5)
    after = await world.p.operations.get(op.id)
    assert after is not None and after.phase == "Canceled"
    assert not catalog_exists(world, op.id)
    record = await activity_of(world, op.id)
    assert (record.identity, record.action, record.outcome) == (
        world.names["member"],
        "backup",
        "Canceled",
    )
    assert record.target == f"{BUSY}.shop.web" and record.namespaces == ["shop"]


async def test_late_transfer_results_of_a_canceled_backup_change_nothing(world: World) -> None:
    op = await start_backup(world, IDLE, "absent", world.names["member"])
    with pytest.raises(grpc.aio.AioRpcError) as viewer:
        await cancel(world, op.id, world.tokens["viewer"])
    assert viewer.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as scoped:
        await cancel(world, op.id, world.tokens["member-other"])
    assert scoped.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert (await cancel(world, op.id, world.tokens["member"])).phase == "Canceled"
    assert (await cancel(world, op.id, world.tokens["member"])).phase == "Canceled"
    await world.bus.publish(
        subjects.TRANSFER_COMPLETED,
        TransferResult(
            transfer_id=f"{op.id}-data",
            operation_id=op.id,
            cluster=IDLE,
            direction="backup",
            bytes=4000,
            snapshot_id="ab" * 32,
        ),
    )

    async def recorded() -> Operation | None:
        now_op = await world.p.operations.get(op.id)
        return now_op if now_op and now_op.volumes[0].state == "Done" else None

    late = await wait_for(recorded, "the late transfer result recorded")
    assert late.phase == "Canceled" and not catalog_exists(world, op.id)


async def test_a_finished_operation_cannot_be_canceled(world: World) -> None:
    done = Operation(
        id=f"backup-done-{RUN}", kind="backup", app_id=f"{IDLE}.shop.web", phase="Completed"
    )
    await world.p.operations.kv.put(done.id, done.model_dump_json().encode())
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        await cancel(world, done.id, world.tokens["member"])
    assert ended.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "already ended (Completed)" in (ended.value.details() or "")


async def test_a_catalog_written_as_the_cancel_won_is_removed(world: World) -> None:
    """The race: the last transfer settled and backup.json was being written when the
    cancel changed the phase; the late completion must not leave the catalog behind."""
    op = await start_backup(world, IDLE, "race", world.names["member"])
    await cancel(world, op.id, world.tokens["member"])
    world.store.put_bytes(f"backups/{op.id}/backup.json", b"{}")
    finished = await world.p.operations.change(
        op.id, lambda o: setattr(o, "phase", Phase.COMPLETED)
    )
    assert finished.phase == "Canceled"  # the store keeps a canceled operation canceled
    await world.bus.publish(
        subjects.BACKUP_COMPLETED,
        BackupEvent(backup_id=op.id, operation_id=op.id, app_id=op.app_id, bucket="default"),
    )

    async def gone() -> bool:
        return not catalog_exists(world, op.id)

    await wait_for(gone, "backup.json of the canceled backup removed")


async def test_list_operations_filters_and_pages_newest_first(world: World) -> None:
    app_id = f"{IDLE}.shop.web"
    base = now() - timedelta(hours=1)
    for i in range(3):
        op = Operation(
            id=f"restore-list{i}-{RUN}",
            kind="backup",
            app_id=app_id,
            phase="Failed",
            created=base + timedelta(minutes=i),
        )
        await world.p.operations.kv.put(op.id, op.model_dump_json().encode())
    stub = rpc.OperationServiceStub(world.channel)
    viewer = bearer(world.tokens["viewer"])
    seen: list[str] = []
    token, pages = "", 0
    while True:
        reply = await stub.ListOperations(
            pb.ListOperationsRequest(app_id=app_id, phase="Failed", page_size=2, page_token=token),
            metadata=viewer,
        )
        pages += 1
        seen += [o.id for o in reply.operations]
        token = reply.next_page_token
        if not token:
            break
    assert pages == 2 and seen == [f"restore-list{i}-{RUN}" for i in (2, 1, 0)]
    canceled = await stub.ListOperations(
        pb.ListOperationsRequest(phase="Canceled", kind="backup"), metadata=viewer
    )
    assert {o.phase for o in canceled.operations} == {"Canceled"}
    assert f"backup-absent-{RUN}" in {o.id for o in canceled.operations}
    scoped = await stub.ListOperations(
        pb.ListOperationsRequest(app_id=app_id), metadata=bearer(world.tokens["member-other"])
    )
    assert list(scoped.operations) == []
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await stub.ListOperations(pb.ListOperationsRequest(phase="Sleeping"), metadata=viewer)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
