"""Listing KV keys and tailing events often must not exhaust the server's consumer limit."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nats.js.api import ConsumerConfig
from nats.js.errors import BucketNotFoundError

from vessel.bus.nats_port import Bus
from vessel.contracts import subjects
from vessel.contracts.events import DeadLettered


async def test_listing_keys_many_times_leaves_no_consumers(bus: Bus) -> None:
    name = f"keys-{uuid.uuid4().hex[:8]}"
    kv = await bus.kv(name)
    assert await kv.keys() == []
    await kv.put("a", b"1")
    await kv.put("b", b"2")
    await kv.delete("b")
    for _ in range(1200):  # the server refuses the 1001st consumer of a stream
        keys = await kv.keys()
    assert keys == ["a"]
    info = await bus.js.stream_info(f"KV_{name}")
    assert info.state.consumer_count == 0


async def test_a_key_nats_cannot_store_reads_as_absent(bus: Bus) -> None:
    kv = await bus.kv(f"keys-{uuid.uuid4().hex[:8]}")
    for key in ("0.", "a..b", "spaces are invalid", ""):
        assert await kv.get(key) is None


async def test_tailing_events_leaves_no_consumer_behind(bus: Bus) -> None:
    await bus.ensure_streams()
    before = (await bus.js.stream_info(subjects.EVENTS_STREAM)).state.consumer_count
    since = datetime.now(UTC) - timedelta(seconds=1)
    await bus.publish(subjects.DEAD_LETTERED, _dead_letter())
    for _ in range(3):
        async for _, _event in bus.tail(subjects.DEAD_LETTERED.subject, since=since):
            break
    # A broken-off tail is closed by the event loop right after; the server itself would
    # drop the consumer only after seconds of inactivity.
    for _ in range(20):
        after = (await bus.js.stream_info(subjects.EVENTS_STREAM)).state.consumer_count
        if after == before:
            break
        await asyncio.sleep(0.1)
    assert after == before


def _dead_letter() -> DeadLettered:
    return DeadLettered(stream="S", subject="x", sequence=1, error="test", data="{}")


@pytest.mark.parametrize("stream", ["commands", "kv"])
async def test_a_stream_takes_the_consumers_of_more_than_a_thousand_clusters(
    bus: Bus, stream: str
) -> None:
    """Four command consumers per cluster, and each cluster's agent watching a KV bucket:
    the server's default cap of 1,000 consumers per stream would stop a fleet there."""
    run = uuid.uuid4().hex[:6]
    if stream == "commands":
        name, subject = subjects.COMMANDS_STREAM, f"vessel.cmd.x.{run}"
    else:
        await bus.kv(f"watched-{run}")
        name, subject = f"KV_watched-{run}", f"$KV.watched-{run}"
    durables = [f"fleet-{run}-{i}" for i in range(1010)]
    try:
        for i, durable in enumerate(durables):
            config = ConsumerConfig(durable_name=durable, filter_subject=f"{subject}.{i}")
            await bus.js.add_consumer(name, config)
    finally:
        for durable in durables:
            with contextlib.suppress(Exception):
                await bus.js.delete_consumer(name, durable)


async def test_a_bucket_created_meanwhile_by_another_service_is_opened(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Services starting together race to create a bucket: one looked it up before another
    created it (and raised its consumer limit), so its own create no longer matches the
    bucket's configuration; it opens the bucket instead of failing to start."""
    name = f"raced-{uuid.uuid4().hex[:8]}"
    first = await bus.kv(name)  # the other service, first
    looked_up = bus.js.key_value

    async def before_it_existed(bucket: str) -> Any:
        monkeypatch.setattr(bus.js, "key_value", looked_up)
        raise BucketNotFoundError

    monkeypatch.setattr(bus.js, "key_value", before_it_existed)
    second = await bus.kv(name)
    await first.put("k", b"v")
    assert (await second.get("k")) is not None
