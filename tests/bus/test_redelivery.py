"""A worker that dies mid-message is replaced after the consumer's ack wait
(`redelivery_seconds`); a live one, however long it works, is not: it says it is at work
every third of that wait."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from tests.bus.test_bus import command
from vessel.bus.nats_port import Bus
from vessel.contracts import subjects
from vessel.contracts.commands import MoveToBucket
from vessel_dev.rig import servers

pytestmark = pytest.mark.timeout(60)
ACK_WAIT = 3.0


async def worker(url: str, cluster: str, handler: object) -> Bus:
    bus = Bus(source="/clusters/test/worker", ack_wait=ACK_WAIT)
    await bus.connect(url, name="vessel-test-worker")
    await bus.consume(f"test-{cluster}", {subjects.MOVE_TO_BUCKET: handler}, cluster=cluster)
    return bus


async def test_a_live_worker_keeps_its_message_and_a_dead_ones_goes_on_after_the_wait(
    nats_server: servers.Nats,
) -> None:
    cluster = f"c{uuid.uuid4().hex[:10]}"
    started: list[tuple[str, float, int]] = []
    finished = asyncio.Event()

    async def slow(cmd: MoveToBucket) -> None:  # longer than two ack waits
        started.append(("slow", time.monotonic(), 0))
        await asyncio.sleep(ACK_WAIT * 2.5)
        finished.set()

    live = await worker(nats_server.url, cluster, slow)
    try:
        await live.publish(subjects.MOVE_TO_BUCKET, command(cluster), cluster=cluster)
        await asyncio.wait_for(finished.wait(), 20)
        await asyncio.sleep(ACK_WAIT + 1)
        assert len(started) == 1  # never handed to anyone else while it worked
    finally:
        await live.close()

    other = f"{cluster}x"
    begun = asyncio.Event()
    handled: list[float] = []

    async def dies(cmd: MoveToBucket) -> None:
        begun.set()
        await asyncio.Event().wait()  # until its process is gone

    async def completes(cmd: MoveToBucket) -> None:
        handled.append(time.monotonic())

    doomed = await worker(nats_server.url, other, dies)
    await doomed.publish(subjects.MOVE_TO_BUCKET, command(other, "t2"), cluster=other)
    await asyncio.wait_for(begun.wait(), 10)
    assert doomed._nc is not None
    await doomed._nc.close()  # as a killed process: no ack, no nak, no more keep-alives
    died = time.monotonic()
    successor = await worker(nats_server.url, other, completes)
    try:
        for _ in range(100):
            if handled:
                break
            await asyncio.sleep(0.1)
        assert handled, "the message never reached the worker that took over"
        assert ACK_WAIT * 0.5 <= handled[0] - died <= ACK_WAIT + 3, handled[0] - died
    finally:
        await successor.close()
        await doomed.close()
