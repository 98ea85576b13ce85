"""Events of a cluster's agents carry the cluster in their subject, and a consumer made by
an older version (on the subjects without it) is moved onto the new ones while it still
takes what older agents publish: an upgrade loses no event."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from nats.js.api import ConsumerConfig

from vessel.bus.nats_port import Bus
from vessel.contracts import subjects
from vessel.contracts.envelope import CloudEvent, new_event
from vessel.contracts.events import AppChanged, AppRecord, TransferResult


def app(cluster: str) -> AppRecord:
    return AppRecord(
        cluster=cluster,
        namespace="shop",
        name="shop",
        grouping="label",
        state="Available",
    )


def result(cluster: str, transfer_id: str) -> TransferResult:
    return TransferResult(
        transfer_id=transfer_id, operation_id="op", cluster=cluster, direction="backup", error="x"
    )


async def subject_of(bus: Bus, message: subjects.Message, sent: CloudEvent) -> str:
    """The subject `sent` (a `message`) was stored under."""
    async for subject, event in bus.tail(message.filter_subject, since=sent.time):
        if event.id == sent.id:
            return subject
    raise AssertionError("the tail ended")


async def test_an_agents_event_is_published_on_its_clusters_subject(bus: Bus) -> None:
    cluster = f"c{uuid.uuid4().hex[:8]}"
    sent = await bus.publish(subjects.TRANSFER_FAILED, result(cluster, "t"))  # from the payload
    failed = await subject_of(bus, subjects.TRANSFER_FAILED, sent)
    assert failed == f"vessel.evt.mover.{cluster}.transfer.failed"
    with pytest.raises(ValueError, match="needs a cluster for its subject"):
        await bus.publish(subjects.APP_REMOVED, AppChanged(app=app(cluster)))
    named = await bus.publish(subjects.APP_REMOVED, AppChanged(app=app(cluster)), cluster=cluster)
    removed = await subject_of(bus, subjects.APP_REMOVED, named)
    assert removed == f"vessel.evt.discovery.{cluster}.app.removed"


async def test_an_older_consumer_moves_to_the_new_subjects_and_keeps_the_old(bus: Bus) -> None:
    cluster, durable = f"c{uuid.uuid4().hex[:8]}", f"upgrade-{uuid.uuid4().hex[:8]}"
    legacy = subjects.TRANSFER_FAILED.legacy_subject
    assert legacy == "vessel.evt.mover.transfer.failed"
    await bus.js.add_consumer(
        subjects.EVENTS_STREAM, ConsumerConfig(durable_name=durable, filter_subjects=[legacy])
    )
    got: list[str] = []
    done = asyncio.Event()

    async def handler(payload: TransferResult) -> None:
        if payload.cluster == cluster:
            got.append(payload.transfer_id)
            if len(got) == 2:
                done.set()

    await bus.consume(durable, {subjects.TRANSFER_FAILED: handler})
    info = await bus.js.consumer_info(subjects.EVENTS_STREAM, durable)
    assert sorted(info.config.filter_subjects or []) == sorted(
        [legacy, subjects.TRANSFER_FAILED.filter_subject]
    )
    await bus.publish(subjects.TRANSFER_FAILED, result(cluster, "new"))
    data = result(cluster, "old").model_dump(mode="json")
    old = new_event(subjects.TRANSFER_FAILED.type, "/clusters/x/mover", data, None, None)
    await bus.publish_raw(legacy, old)  # an agent not upgraded yet
    await asyncio.wait_for(done.wait(), 10)
    assert sorted(got) == ["new", "old"]
