"""Every operation ends: one that shows no change nor transfer progress for the stall time
is failed, naming what it still waited for; one whose transfer reports progress lives on;
one that ended meanwhile or is being canceled is left alone."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.protection.operation_gauges import OperationGauges
from services.protection.state.operations import OperationStore
from services.protection.watchdog import Watchdog
from vessel.bus.nats_port import Bus
from vessel.contracts import subjects
from vessel.contracts.events import TransferProgress
from vessel.contracts.operations import Operation, Phase, VolumeWork

pytestmark = pytest.mark.timeout(30)
HOUR = timedelta(hours=1)


async def test_a_stalled_operation_fails_and_a_moving_one_lives(bus: Bus) -> None:
    kv = await bus.kv(f"t_ops_{uuid.uuid4().hex[:8]}")
    store = OperationStore(kv)
    long_ago = datetime.now(UTC) - 2 * HOUR
    stuck = Operation(
        id=f"backup-stuck-{uuid.uuid4().hex[:6]}", kind="backup", phase=Phase.IN_PROGRESS,
        volumes=[VolumeWork(claim="data", namespace="shop", transfer_id="t-1", state="Moving")],
        updated=long_ago,
    )  # fmt: skip
    moving = Operation(
        id=f"restore-moving-{uuid.uuid4().hex[:6]}", kind="restore", phase=Phase.IN_PROGRESS,
        updated=long_ago,
    )  # fmt: skip
    canceling = Operation(
        id=f"backup-cancel-{uuid.uuid4().hex[:6]}", kind="backup", phase=Phase.CANCELING,
        updated=long_ago,
    )  # fmt: skip
    ended = Operation(
        id=f"backup-done-{uuid.uuid4().hex[:6]}", kind="backup", phase=Phase.COMPLETED,
        updated=long_ago,
    )  # fmt: skip
    for op in (stuck, moving, canceling, ended):
        assert await store.create(op)
    view = OperationGauges(kv, interval=0.05)
    following = asyncio.create_task(view.run())
    told: list[Operation] = []

    async def failed_elsewhere(op: Operation) -> None:  # the restore flow's, in the service
        told.append(op)

    watchdog = Watchdog(bus, view, store, stall=HOUR, interval=3600, failed=failed_elsewhere)
    listening = asyncio.create_task(watchdog.run())
    try:
        for _ in range(100):
            if len(view.seen) == 4:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # its subscriptions are in place
        progress = TransferProgress(
            transfer_id="t-2", operation_id=moving.id, cluster="cluster-a", direction="restore",
            files=3, bytes=1 << 20, bytes_per_second=1e6,
        )  # fmt: skip
        await bus.publish(subjects.TRANSFER_PROGRESS, progress)
        for _ in range(100):
            if moving.id in watchdog.progress:
                break
            await asyncio.sleep(0.05)
        assert await watchdog.check(datetime.now(UTC)) == [stuck.id]
    finally:
        for task in (following, listening):
            task.cancel()
        await asyncio.gather(following, listening, return_exceptions=True)
    failed = await store.get(stuck.id)
    assert failed is not None and failed.phase == Phase.FAILED
    assert failed.message.startswith("no change nor progress for 7")  # 2 h = 7200 s
    assert failed.message.endswith("volume transfers not ended: shop/data (Moving)")
    assert [(o.id, o.phase) for o in told] == [(stuck.id, Phase.FAILED)]  # told, once
    for alive, phase in ((moving, Phase.IN_PROGRESS), (canceling, Phase.CANCELING)):
        kept = await store.get(alive.id)
        assert kept is not None and kept.phase == phase
    done = await store.get(ended.id)
    assert done is not None and done.phase == Phase.COMPLETED
