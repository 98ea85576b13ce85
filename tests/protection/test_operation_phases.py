"""Operation phases over real NATS and a real S3 bucket: the store refuses a phase that goes
back, late work never takes an operation out of a cancel, and a cancel goes through
Canceling (its cleanup) to Canceled, finishing on redelivery when its cleanup failed."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from services.protection.agents import DirectClusters
from services.protection.backup import BackupFlow
from services.protection.cancel import CancelFlow
from services.protection.context import ProtectionContext
from services.protection.state.operations import OperationStore
from tests.support import sealed
from vessel.bus.errors import TemporaryError
from vessel.bus.nats_port import Bus
from vessel.contracts import subjects
from vessel.contracts.events import TransferResult
from vessel.contracts.operations import Operation, Phase, PhaseTransitionError, VolumeWork
from vessel.contracts.protection import CancelOperation
from vessel.contracts.state import BACKUP_LISTING, backup_key
from vessel.objectstore.base import StoreUnavailable
from vessel.objectstore.minio_port import MinioStore
from vessel.sealed.documents import SealedStore

pytestmark = pytest.mark.timeout(60)


def to(phase: Phase, message: str | None = None) -> Any:
    def mutate(o: Operation) -> None:
        o.phase = phase
        if message is not None:
            o.message = message

    return mutate


async def store(bus: Bus) -> OperationStore:
    return OperationStore(await bus.kv(f"t_ops_{uuid.uuid4().hex[:8]}"))


async def test_a_completed_operation_never_goes_back(bus: Bus) -> None:
    operations = await store(bus)
    op = Operation(id="backup-1", kind="backup")
    assert await operations.create(op)
    await operations.change(op.id, to(Phase.IN_PROGRESS))
    await operations.change(op.id, to(Phase.COMPLETED))
    with pytest.raises(
        PhaseTransitionError, match="operation backup-1 cannot go from Completed to InProgress"
    ):
        await operations.change(op.id, to(Phase.IN_PROGRESS))
    with pytest.raises(PhaseTransitionError, match="from Completed to Failed"):
        await operations.change(op.id, to(Phase.FAILED))
    stored = await operations.get(op.id)
    assert stored is not None and stored.phase == Phase.COMPLETED


async def test_late_work_never_takes_an_operation_out_of_a_cancel(bus: Bus) -> None:
    operations = await store(bus)
    op = Operation(id="backup-2", kind="backup", phase=Phase.IN_PROGRESS)
    assert await operations.create(op)
    await operations.change(op.id, to(Phase.CANCELING, "canceled by alice"))
    late = await operations.change(op.id, to(Phase.COMPLETED, "2 volumes, 10 bytes"))
    assert (late.phase, late.message) == (Phase.CANCELING, "canceled by alice")
    assert not late.done  # the cleanup still runs
    canceled = await operations.change(op.id, to(Phase.CANCELED))
    assert (canceled.phase, canceled.message) == (Phase.CANCELED, "canceled by alice")
    later = await operations.change(op.id, to(Phase.FAILED, "transfer failed"))
    assert (later.phase, later.message) == (Phase.CANCELED, "canceled by alice")


class FlakyBucket:
    """A bucket opener that fails while `down` (the store unreachable)."""

    def __init__(self, sb: SealedStore) -> None:
        self.sb = sb
        self.down = True

    def __call__(self, name: str) -> SealedStore:
        if self.down:
            raise StoreUnavailable(f"bucket {name} is unreachable")
        return self.sb


async def canceled_events(bus: Bus, op_id: str, since: datetime) -> list[dict[str, Any]]:
    found = []
    stream = bus.tail(subjects.OPERATION_CANCELED.subject, since=since)
    try:
        while True:
            _, event = await asyncio.wait_for(anext(stream), timeout=1.0)
            if event.data.get("operation_id") == op_id:
                found.append(event.data)
    except TimeoutError:
        return found
    finally:
        await stream.aclose()


async def test_a_cancel_whose_cleanup_failed_stays_canceling_until_redelivered(
    bus: Bus, bucket: MinioStore
) -> None:
    suffix = uuid.uuid4().hex[:8]
    opener = FlakyBucket(sealed(bucket))
    p = ProtectionContext(
        bus=bus,
        clusters=DirectClusters({}),
        open_bucket=opener,
        operations=await store(bus),
        inventory=await bus.kv(f"t_inv_{suffix}"),
        waits=await bus.kv(f"t_waits_{suffix}"),
    )
    op_id, since = f"backup-{suffix}", datetime.now(UTC)
    work = VolumeWork(claim="data", namespace="shop", transfer_id=f"{op_id}-data", state="Moving")
    await p.operations.create(
        Operation(
            id=op_id, kind="backup", bucket="default", phase=Phase.IN_PROGRESS, volumes=[work]
        )
    )
    listing = backup_key(op_id, BACKUP_LISTING)
    bucket.put_bytes(listing, b"{}")  # its catalog was being written as the cancel came
    cancels, command = CancelFlow(p), CancelOperation(operation_id=op_id, requested_by="alice")

    with pytest.raises(TemporaryError, match="unreachable"):
        await cancels.on_command(command)
    canceling = await p.operations.get(op_id)
    assert canceling is not None
    assert (canceling.phase, canceling.message) == (Phase.CANCELING, "canceled by alice")
    assert bucket.exists(listing)

    # The transfer ends meanwhile: a canceling backup is no longer running, nothing completes.
    await BackupFlow(p).on_transfer(
        TransferResult(
            transfer_id=work.transfer_id,
            operation_id=op_id,
            cluster="c1",
            direction="backup",
            bytes=10,
            snapshot_id="ab" * 32,
        )
    )
    late = await p.operations.get(op_id)
    assert late is not None and late.phase == Phase.CANCELING
    assert late.volumes[0].state == "Done"

    opener.down = False
    await cancels.on_command(command)  # redelivered: finishes the cleanup
    canceled = await p.operations.get(op_id)
    assert canceled is not None
    assert (canceled.phase, canceled.message) == (Phase.CANCELED, "canceled by alice")
    assert not bucket.exists(listing)
    await cancels.on_command(command)  # once more: nothing left to do
    events = await canceled_events(bus, op_id, since)
    assert [(e["requested_by"], e["transfer_ids"]) for e in events] == [
        ("alice", [work.transfer_id])
    ]
