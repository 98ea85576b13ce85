"""The caller's token name travels as `requested_by` on the commands the gateway publishes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.gateway.harness import ADMIN_TOKEN, Starter, bearer, issue, make_settings, unique
from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc
from vessel.bus.nats_port import Bus
from vessel.contracts import subjects
from vessel.contracts.commands import CreateBackup, CreateRestore
from vessel.contracts.events import AppRecord
from vessel.objectstore.minio_port import MinioStore
from vessel_dev.rig.processes import S3Server

DURABLE = "tests-gateway-protection"


async def test_token_name_is_requested_by_on_published_commands(
    start_gateway: Starter,
    bus: Bus,
    bucket: MinioStore,
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VESSEL_TEST_ID_S3_ACCESS", s3_server.access_key)
    monkeypatch.setenv("VESSEL_TEST_ID_S3_SECRET", s3_server.secret_key)
    cluster, target = unique("src"), unique("dst")
    app = AppRecord(
        cluster=cluster, namespace="shop", name="web", grouping="label", state="Available"
    )
    await (await bus.kv("inventory")).put(f"apps.{app.id}", app.model_dump_json().encode())
    backup_id = unique("bk")
    doc = {"cluster": cluster, "namespace": "shop", "app_id": app.id}
    bucket.put_bytes(f"backups/{backup_id}/backup.json", json.dumps(doc).encode())
    settings = make_settings(
        clusters=[cluster, target],
        buckets=[
            {
                "name": "default",
                "endpoint": s3_server.endpoint,
                "bucket": bucket.bucket,
                "access_key_env": "VESSEL_TEST_ID_S3_ACCESS",
                "secret_key_env": "VESSEL_TEST_ID_S3_SECRET",
            }
        ],
    )
    gw = await start_gateway(settings)
    channel = gw.channel()
    name, token = await issue(
        channel, ADMIN_TOKEN, "member", clusters=[cluster, target], name=unique("alice")
    )

    seen: dict[str, Any] = {}
    arrived = asyncio.Event()

    async def record(payload: CreateBackup | CreateRestore) -> None:
        seen[payload.operation_id] = payload
        arrived.set()

    task = await bus.consume(
        DURABLE, {subjects.CREATE_BACKUP: record, subjects.CREATE_RESTORE: record}
    )
    backup = await rpc.BackupServiceStub(channel).CreateBackup(
        pb.CreateBackupRequest(app_id=app.id, bucket="default"), metadata=bearer(token)
    )
    restore = await rpc.RestoreServiceStub(channel).CreateRestore(
        pb.CreateRestoreRequest(
            backup_id=backup_id,
            bucket="default",
            target_cluster=target,
            namespace_mapping={"shop": "shop-copy"},
        ),
        metadata=bearer(token),
    )
    admin_backup = await rpc.BackupServiceStub(channel).CreateBackup(
        pb.CreateBackupRequest(app_id=app.id, bucket="default"), metadata=bearer(ADMIN_TOKEN)
    )
    try:
        async with asyncio.timeout(10):
            while not {backup.id, restore.id, admin_backup.id} <= set(seen):
                await arrived.wait()
                arrived.clear()
    finally:
        task.cancel()
    assert backup.requested_by == restore.requested_by == name
    assert isinstance(seen[backup.id], CreateBackup) and seen[backup.id].requested_by == name
    assert isinstance(seen[restore.id], CreateRestore) and seen[restore.id].requested_by == name
    assert seen[restore.id].namespace_mapping == {"shop": "shop-copy"}
    assert seen[admin_backup.id].requested_by == admin_backup.requested_by == "bootstrap-admin"
    stored = await rpc.OperationServiceStub(channel).GetOperation(
        pb.GetOperationRequest(id=backup.id), metadata=bearer(token)
    )
    assert stored.requested_by == name
