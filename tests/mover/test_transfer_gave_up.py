"""A transfer whose bucket stays unreachable is tried again with growing waits and then
given up: the mover records and announces it failed, naming the deliveries and the store,
so the operation waiting for it ends instead of staying InProgress."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.mover.transfers import Mover
from services.mover.volumes import RepositoryData
from vessel.bus.nats_port import MAX_DELIVER, Bus
from vessel.contracts import subjects
from vessel.contracts.commands import MoveToBucket
from vessel.contracts.events import TransferResult
from vessel.objectstore.minio_port import MinioStore
from vessel.sealed.providers.password import PasswordKey
from vessel_dev.rig.processes import free_port

pytestmark = pytest.mark.timeout(60)


async def test_a_transfer_to_an_unreachable_bucket_is_given_up_as_failed(
    bus: Bus, tmp_path: Path
) -> None:
    cluster = f"c{uuid.uuid4().hex[:8]}"
    down = MinioStore(f"127.0.0.1:{free_port()}", "nowhere", "key", "secret")
    buckets = {"down": RepositoryData(down, "repository", PasswordKey("pw"))}
    records = await bus.kv(f"t_{uuid.uuid4().hex[:8]}")
    mover = Mover(cluster, bus, records, buckets.__getitem__, retry_seconds=0.05)
    source = tmp_path / "volume"
    source.mkdir()
    (source / "file").write_bytes(b"data")
    command = MoveToBucket(
        transfer_id="t-1", operation_id="op-1", cluster=cluster, bucket="down",
        source_path=str(source),
    )  # fmt: skip
    durable = f"test-mover-{cluster}"
    task = await bus.consume(
        durable, {subjects.MOVE_TO_BUCKET: mover.to_bucket}, cluster=cluster, gave_up=mover.gave_up
    )
    since = datetime.now(UTC)
    try:
        await bus.publish(subjects.MOVE_TO_BUCKET, command, cluster=cluster)
        async with asyncio.timeout(45):
            async for _, event in bus.tail(subjects.TRANSFER_FAILED.filter_subject, since=since):
                failed = TransferResult.model_validate(event.data)
                if failed.transfer_id == "t-1" and failed.cluster == cluster:
                    break
    finally:
        task.cancel()
        await bus.js.delete_consumer(subjects.COMMANDS_STREAM, durable)
    assert (failed.operation_id, failed.direction) == ("op-1", "backup")
    assert failed.error.startswith(f"gave up after {MAX_DELIVER} deliveries: ")
    assert "s3://nowhere" in failed.error
    await mover.to_bucket(command)  # asked again: the recorded failure, nothing retried
    recorded = await mover.transfers.get("t-1")
    assert recorded == failed
