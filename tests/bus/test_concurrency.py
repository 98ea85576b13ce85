"""A consumer with `concurrency` N handles up to N messages at once (the mover moves the
volumes of one app in parallel), and never holds more than it handles: with 1, messages
run one after another."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from services.mover.buckets import MoverBuckets
from services.mover.cancels import Cancels
from services.mover.context import MoverContext
from services.mover.inbox import rows
from tests.bus.test_bus import command
from vessel.bus.inbox import Consumer
from vessel.bus.nats_port import Bus
from vessel.config import VesselSettings
from vessel.contracts import subjects
from vessel.contracts.commands import MoveToBucket
from vessel.stopping import cancel_and_wait

pytestmark = pytest.mark.timeout(60)


async def peak_running(bus: Bus, concurrency: int, messages: int) -> tuple[int, list[str]]:
    """How many handlers ran at once at most, and the order the messages finished in."""
    cluster = f"c{uuid.uuid4().hex[:10]}"
    running, peak, finished = 0, 0, []
    all_done = asyncio.Event()

    async def handle(cmd: MoveToBucket) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.5)
        running -= 1
        finished.append(cmd.transfer_id)
        if len(finished) == messages:
            all_done.set()

    task = await bus.consume(
        f"test-{cluster}",
        {subjects.MOVE_TO_BUCKET: handle},
        cluster=cluster,
        concurrency=concurrency,
    )
    try:
        for n in range(messages):
            await bus.publish(subjects.MOVE_TO_BUCKET, command(cluster, f"t{n}"), cluster=cluster)
        await asyncio.wait_for(all_done.wait(), 20)
    finally:
        await cancel_and_wait([task])
    return peak, finished


async def test_up_to_n_messages_are_handled_at_once(bus: Bus) -> None:
    peak, finished = await peak_running(bus, concurrency=3, messages=7)
    assert peak == 3 and sorted(finished) == [f"t{n}" for n in range(7)]


async def test_one_at_a_time_keeps_the_order(bus: Bus) -> None:
    peak, finished = await peak_running(bus, concurrency=1, messages=4)
    assert peak == 1 and finished == ["t0", "t1", "t2", "t3"]


def test_the_mover_moves_mover_transfers_volumes_at_once() -> None:
    none: Any = None
    settings = VesselSettings(mover_transfers=3)
    ctx = MoverContext(settings, "c1", none, MoverBuckets(none), Cancels(none, "c1"), none)
    consumers = {r.durable: r.concurrency for r in rows(ctx) if isinstance(r, Consumer)}
    assert consumers == {"mover-c1": 3, "mover-c1-cancels": 1, "mover-c1-forget": 1}
