"""The bus against a real NATS server: de-duplication, ack / nak / term, dead letters, KV."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from vessel.bus import nats_port
from vessel.bus.codec import DecodeError, decode, for_dead_letter
from vessel.bus.errors import BusError, KeyExistsError, PermanentError, TemporaryError
from vessel.bus.nats_port import Bus
from vessel.contracts import subjects
from vessel.contracts.commands import MoveToBucket
from vessel.contracts.envelope import CloudEvent, new_event
from vessel.contracts.events import DeadLettered, TransferResult

pytestmark = pytest.mark.timeout(60)


def command(cluster: str, transfer: str = "t1") -> MoveToBucket:
    return MoveToBucket(
        transfer_id=transfer,
        operation_id="op1",
        cluster=cluster,
        bucket="default",
        source_path="/data",
    )


def cluster_id() -> str:
    return f"c{uuid.uuid4().hex[:10]}"


async def dead_letters(bus: Bus, since: datetime, count: int) -> list[DeadLettered]:
    found: list[DeadLettered] = []
    async with asyncio.timeout(20):
        async for _, event in bus.tail(subjects.DEAD_LETTERED.subject, since=since):
            found.append(DeadLettered.model_validate(event.data))
            if len(found) == count:
                return found
    return found


async def consume(bus: Bus, cluster: str, handler: Callable[[Any], Awaitable[None]]) -> None:
    await bus.consume(f"test-{cluster}", {subjects.MOVE_TO_BUCKET: handler}, cluster=cluster)


async def test_publish_is_deduplicated_by_event_id(bus: Bus) -> None:
    cluster = cluster_id()
    event = new_event(
        subjects.MOVE_TO_BUCKET.type, "/test", command(cluster).model_dump(), None, None
    )
    before = (await bus.js.stream_info(subjects.COMMANDS_STREAM)).state.messages
    for _ in range(3):
        await bus.publish_raw(subjects.MOVE_TO_BUCKET.subject_for(cluster), event)
    after = (await bus.js.stream_info(subjects.COMMANDS_STREAM)).state.messages
    assert after - before == 1


async def test_handler_receives_model_with_trace_context_and_acks(bus: Bus) -> None:
    cluster = cluster_id()
    seen: list[MoveToBucket] = []
    done = asyncio.Event()

    async def handler(cmd: MoveToBucket) -> None:
        seen.append(cmd)
        done.set()

    await consume(bus, cluster, handler)
    sent = await bus.publish(subjects.MOVE_TO_BUCKET, command(cluster), cluster=cluster)
    await asyncio.wait_for(done.wait(), 10)
    await asyncio.sleep(0.5)  # an unacked message would be redelivered; give it the chance
    assert seen == [command(cluster)]
    assert sent.traceparent and sent.traceparent.startswith("00-")


async def test_temporary_error_redelivers_until_success(bus: Bus) -> None:
    cluster = cluster_id()
    attempts = 0
    done = asyncio.Event()

    async def handler(cmd: MoveToBucket) -> None:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise TemporaryError("not yet", delay=0.05)
        done.set()

    await consume(bus, cluster, handler)
    await bus.publish(subjects.MOVE_TO_BUCKET, command(cluster), cluster=cluster)
    await asyncio.wait_for(done.wait(), 10)
    assert attempts == 3


async def test_invalid_payload_is_dead_lettered_with_the_field(bus: Bus) -> None:
    cluster = cluster_id()
    calls = 0

    async def handler(cmd: MoveToBucket) -> None:
        nonlocal calls
        calls += 1

    await consume(bus, cluster, handler)
    since = datetime.now(UTC)
    bad = command(cluster).model_dump()
    del bad["source_path"]
    bad["cluster"] = "Not/A Cluster"
    event = new_event(subjects.MOVE_TO_BUCKET.type, "/test", bad, None, None)
    await bus.publish_raw(subjects.MOVE_TO_BUCKET.subject_for(cluster), event)
    [letter] = await dead_letters(bus, since, 1)
    assert letter.message_id == event.id
    assert "source_path" in letter.error and "cluster" in letter.error
    assert letter.subject == subjects.MOVE_TO_BUCKET.subject_for(cluster)
    assert calls == 0


async def test_garbage_envelope_is_dead_lettered(bus: Bus) -> None:
    cluster = cluster_id()

    async def handler(cmd: MoveToBucket) -> None:
        raise AssertionError("must not be called")

    await consume(bus, cluster, handler)
    since = datetime.now(UTC)
    await bus.js.publish(subjects.MOVE_TO_BUCKET.subject_for(cluster), b"{not json")
    [letter] = await dead_letters(bus, since, 1)
    assert "invalid CloudEvent envelope" in letter.error
    assert letter.data == "{not json"


async def test_permanent_error_and_exhausted_retries_are_dead_lettered(bus: Bus) -> None:
    cluster = cluster_id()
    attempts: dict[str, int] = {}

    async def handler(cmd: MoveToBucket) -> None:
        attempts[cmd.transfer_id] = attempts.get(cmd.transfer_id, 0) + 1
        if cmd.transfer_id == "permanent":
            raise PermanentError("the source volume is gone")
        raise TemporaryError("still down", delay=0.05)

    await consume(bus, cluster, handler)
    since = datetime.now(UTC)
    await bus.publish(subjects.MOVE_TO_BUCKET, command(cluster, "permanent"), cluster=cluster)
    await bus.publish(subjects.MOVE_TO_BUCKET, command(cluster, "flaky"), cluster=cluster)
    letters = await dead_letters(bus, since, 2)
    errors = sorted(letter.error for letter in letters)
    assert errors[0].startswith(f"gave up after {nats_port.MAX_DELIVER} deliveries")
    assert errors[1] == "permanent error: the source volume is gone"
    assert attempts == {"permanent": 1, "flaky": nats_port.MAX_DELIVER}


async def test_a_message_given_up_is_told_after_deliveries_ever_further_apart(
    bus: Bus,
) -> None:
    """Each delivery of a failing message waits twice as long as the one before; when the
    last fails, the consumer's `gave_up` hears the payload and why, then it is dead-lettered."""
    cluster = cluster_id()
    times: list[float] = []
    told: list[tuple[MoveToBucket, str]] = []

    async def handler(cmd: MoveToBucket) -> None:
        times.append(time.monotonic())
        raise TemporaryError("store unreachable", delay=0.1)

    async def gave_up(cmd: MoveToBucket, error: str) -> None:
        told.append((cmd, error))

    durable = f"test-mover-{cluster}"
    task = await bus.consume(
        durable, {subjects.MOVE_TO_BUCKET: handler}, cluster=cluster, gave_up=gave_up
    )
    try:
        since = datetime.now(UTC)
        await bus.publish(subjects.MOVE_TO_BUCKET, command(cluster, "t-down"), cluster=cluster)
        [letter] = await dead_letters(bus, since, 1)
    finally:
        task.cancel()
        await bus.js.delete_consumer(subjects.COMMANDS_STREAM, durable)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) == nats_port.MAX_DELIVER
    assert all(g >= 0.1 * 2**i * 0.9 for i, g in enumerate(gaps)), gaps  # 0.1, 0.2, 0.4 ...
    expected = f"gave up after {nats_port.MAX_DELIVER} deliveries: store unreachable"
    assert told == [(command(cluster, "t-down"), expected)] and letter.error == expected


async def test_kv_create_and_update_are_compare_and_set(bus: Bus) -> None:
    kv = await bus.kv(f"test_{uuid.uuid4().hex[:8]}")
    assert await kv.get("k") is None
    first = await kv.create("k", b"1")
    with pytest.raises(KeyExistsError):
        await kv.create("k", b"2")
    second = await kv.update("k", b"3", first)
    with pytest.raises(KeyExistsError, match="changed since revision"):
        await kv.update("k", b"4", first)
    entry = await kv.get("k")
    assert entry is not None and (entry.value, entry.revision) == (b"3", second)
    assert await kv.keys() == ["k"]


def test_envelope_rejects_foreign_types() -> None:
    with pytest.raises(ValueError, match="type"):
        CloudEvent.model_validate(
            {
                "id": "1",
                "source": "/x",
                "type": "com.example.thing",
                "time": "2026-01-01T00:00:00Z",
                "data": {},
            }
        )


def test_dead_letters_never_copy_secret_fields() -> None:
    kubeconfig = "apiVersion: v1\nusers: [{name: u, user: {token: very-secret-token}}]"
    bad = {"operation_id": "op 1 is not an identifier", "cluster": "c1", "kubeconfig": kubeconfig}
    event = new_event(subjects.REGISTER_CLUSTER.type, "/test", bad, None, None)
    body = event.model_dump_json().encode()
    with pytest.raises(DecodeError) as raised:
        decode(body)
    kept = for_dead_letter(body, raised.value.event)
    assert "very-secret-token" not in kept
    assert json.loads(kept)["data"]["kubeconfig"] == "<redacted>"
    assert json.loads(kept)["data"]["cluster"] == "c1"
    assert for_dead_letter(b"not json at all", None) == "not json at all"


async def test_request_reply_is_answered_once_per_queue_group(bus: Bus) -> None:
    calls: list[str] = []

    async def echo(subject: str, body: bytes) -> bytes:
        calls.append(subject)
        return body.upper()

    subject = f"vessel.query.test{uuid.uuid4().hex[:8]}"
    for _ in range(2):  # two replicas in one queue group
        await bus.serve(f"{subject}.>", echo, queue="replicas")
    assert await bus.request(f"{subject}.one", b"hello") == b"HELLO"
    assert calls == [f"{subject}.one"]
    with pytest.raises(BusError, match="nobody answers"):
        await bus.request(f"{subject}x.none", b"?", wait=1)


async def test_tail_replays_events_from_a_point_in_time(bus: Bus) -> None:
    cluster = cluster_id()

    def failed(transfer_id: str) -> TransferResult:
        return TransferResult(
            transfer_id=transfer_id,
            operation_id="op9",
            cluster=cluster,
            direction="backup",
            error="boom",
        )

    await bus.publish(subjects.TRANSFER_FAILED, failed("before"))
    await asyncio.sleep(0.05)
    since = datetime.now(UTC)
    await bus.publish(subjects.TRANSFER_FAILED, failed("after"))
    seen = []
    async for subject, event in bus.tail(subjects.TRANSFER_FAILED.filter_subject, since=since):
        seen.append((subject, event.type, event.data["transfer_id"]))
        if event.data["cluster"] == cluster:
            break
    failed_here = subjects.TRANSFER_FAILED.subject_for(cluster)
    assert seen[-1] == (failed_here, subjects.TRANSFER_FAILED.type, "after")
    assert all(transfer != "before" for *_, transfer in seen)


async def test_a_second_consumer_of_the_same_commands_is_refused_naming_it(bus: Bus) -> None:
    """A work-queue stream gives each subject to one consumer: a second durable of the same
    commands is an error, not a consumer that silently never receives."""
    cluster = cluster_id()

    async def handler(_: object) -> None:
        return None

    first = await bus.consume(f"one-{cluster}", {subjects.MOVE_TO_BUCKET: handler}, cluster=cluster)
    try:
        with pytest.raises(BusError, match=f"consumer two-{cluster} on VESSEL_COMMANDS refused"):
            await bus.consume(f"two-{cluster}", {subjects.MOVE_TO_BUCKET: handler}, cluster=cluster)
        again = await bus.consume(
            f"one-{cluster}", {subjects.MOVE_TO_BUCKET: handler}, cluster=cluster
        )
        again.cancel()
    finally:
        first.cancel()
        await bus.js.delete_consumer(subjects.COMMANDS_STREAM, f"one-{cluster}")
