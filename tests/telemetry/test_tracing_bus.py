"""Trace context through real NATS: PRODUCER and CONSUMER spans, exported to a real OTLP
collector, joined into one trace; error status on nak and term; logs carry the ids; and
without an endpoint nothing is exported while context still propagates."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

import pytest

from tests.telemetry.collector import Collector, Received
from vessel.bus.errors import PermanentError, TemporaryError
from vessel.bus.nats_port import Bus
from vessel.config import ConfigError, load_settings
from vessel.contracts import subjects
from vessel.contracts.commands import MoveToBucket
from vessel.telemetry import tracing
from vessel.telemetry.logs import JsonFormatter

pytestmark = pytest.mark.timeout(60)


def command(cluster: str) -> MoveToBucket:
    return MoveToBucket(
        transfer_id="t1", operation_id="op1", cluster=cluster, bucket="default", source_path="/d"
    )


def cluster_id() -> str:
    return f"c{uuid.uuid4().hex[:10]}"


async def consume(bus: Bus, cluster: str, handler: object) -> None:
    await bus.consume(
        f"trace-{cluster}",
        {subjects.MOVE_TO_BUCKET: handler},  # type: ignore[dict-item]
        cluster=cluster,
    )


def one(spans: list[Received], name: str, kind: str) -> Received:
    found = [s for s in spans if s.name == name and s.kind == kind]
    assert len(found) == 1, f"{kind} {name}: {len(found)} in {[(s.kind, s.name) for s in spans]}"
    return found[0]


async def test_publish_and_handling_are_one_trace(exported: Collector, bus: Bus) -> None:
    cluster = cluster_id()
    subject = subjects.MOVE_TO_BUCKET.subject_for(cluster)
    seen: list[tuple[str, str] | None] = []
    done = asyncio.Event()

    async def handler(cmd: MoveToBucket) -> None:
        seen.append(tracing.current_ids())
        done.set()

    await consume(bus, cluster, handler)
    with tracing.span("test request") as root:
        sent = await bus.publish(subjects.MOVE_TO_BUCKET, command(cluster), cluster=cluster)
    await asyncio.wait_for(done.wait(), 10)
    await asyncio.sleep(0.2)  # the CONSUMER span ends after the handler returns
    assert tracing.flush()

    spans = exported.spans()
    producer = one(spans, f"{subject} publish", "PRODUCER")
    consumer = one(spans, f"{subject} process", "CONSUMER")
    trace_id = format(root.get_span_context().trace_id, "032x")
    assert producer.trace_id == consumer.trace_id == trace_id
    assert producer.parent_id == format(root.get_span_context().span_id, "016x")
    assert consumer.parent_id == producer.span_id
    assert {s.service for s in (producer, consumer)} == {"vessel-tests"}
    assert producer.attributes["messaging.system"] == "nats"
    assert producer.attributes["messaging.destination.name"] == subject
    assert producer.attributes["messaging.message.id"] == sent.id
    assert consumer.attributes["messaging.message.id"] == sent.id
    assert consumer.attributes["messaging.operation.type"] == "process"
    assert not consumer.error
    # The message carried the producer's context; the handler ran in the consumer span.
    assert sent.traceparent and sent.traceparent.startswith(f"00-{trace_id}-{producer.span_id}-")
    assert seen == [(trace_id, consumer.span_id)]


async def test_a_publish_outside_any_trace_starts_one(exported: Collector, bus: Bus) -> None:
    cluster = cluster_id()
    sent = await bus.publish(subjects.MOVE_TO_BUCKET, command(cluster), cluster=cluster)
    assert tracing.flush()
    producer = one(
        exported.spans(), f"{subjects.MOVE_TO_BUCKET.subject_for(cluster)} publish", "PRODUCER"
    )
    assert producer.parent_id == ""
    assert sent.traceparent
    assert sent.traceparent.startswith(f"00-{producer.trace_id}-{producer.span_id}-")


async def test_nak_and_term_mark_the_consumer_span_failed(exported: Collector, bus: Bus) -> None:
    cluster = cluster_id()
    subject = subjects.MOVE_TO_BUCKET.subject_for(cluster)
    attempts = 0
    dead = asyncio.Event()

    async def handler(cmd: MoveToBucket) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise TemporaryError("backend busy", delay=0.05)
        dead.set()
        raise PermanentError("no such bucket")

    await consume(bus, cluster, handler)
    await bus.publish(subjects.MOVE_TO_BUCKET, command(cluster), cluster=cluster)
    await asyncio.wait_for(dead.wait(), 10)
    dead_subject = subjects.DEAD_LETTERED.subject_for()

    def complete(spans: list[Received]) -> bool:
        tracing.flush()
        names = [s.name for s in spans]
        return names.count(f"{subject} process") == 2 and f"{dead_subject} publish" in names

    spans = await exported.wait_for(complete)
    naked, termed = sorted(
        (s for s in spans if s.name == f"{subject} process"),
        key=lambda s: "terminated" in s.status_message,
    )
    assert naked.error and "naked: backend busy" in naked.status_message
    assert termed.error and "terminated: no such bucket" in termed.status_message
    assert naked.trace_id == termed.trace_id  # a redelivery continues the producer's trace
    dead_letter = one(spans, f"{dead_subject} publish", "PRODUCER")
    assert dead_letter.parent_id == termed.span_id


async def test_request_and_answer_are_one_trace(exported: Collector, bus: Bus) -> None:
    subject = f"vessel.query.test{uuid.uuid4().hex[:8]}.ping"
    answered_in: list[tuple[str, str] | None] = []

    async def answer(subject: str, body: bytes) -> bytes:
        answered_in.append(tracing.current_ids())
        return b"pong:" + body

    task = await bus.serve(subject, answer)
    try:
        assert await bus.request(subject, b"x") == b"pong:x"
    finally:
        task.cancel()
    assert tracing.flush()
    spans = exported.spans()
    request = one(spans, f"{subject} publish", "PRODUCER")
    handled = one(spans, f"{subject} process", "CONSUMER")
    assert handled.trace_id == request.trace_id and handled.parent_id == request.span_id
    assert answered_in == [(handled.trace_id, handled.span_id)]


def test_log_lines_carry_the_current_span() -> None:
    record = logging.LogRecord("vessel.test", logging.INFO, __file__, 1, "hello", None, None)
    assert "trace_id" not in json.loads(JsonFormatter().format(record))
    with tracing.span("work") as current:
        line = json.loads(JsonFormatter().format(record))
    context = current.get_span_context()
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")


async def test_without_endpoint_nothing_is_exported_and_context_still_flows(
    collector: Collector, bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in tracing.OTEL_ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    tracing.configure("tests")
    try:
        assert not tracing.exporting()
        cluster = cluster_id()
        seen: list[tuple[str, str] | None] = []
        done = asyncio.Event()

        async def handler(cmd: MoveToBucket) -> None:
            seen.append(tracing.current_ids())
            done.set()

        await consume(bus, cluster, handler)
        with tracing.span("untraced request") as root:
            sent = await bus.publish(subjects.MOVE_TO_BUCKET, command(cluster), cluster=cluster)
        await asyncio.wait_for(done.wait(), 10)
        assert tracing.flush()
        trace_id = format(root.get_span_context().trace_id, "032x")
        assert sent.traceparent is not None and sent.traceparent.split("-")[1] == trace_id
        assert seen and seen[0] is not None and seen[0][0] == trace_id
    finally:
        tracing.shutdown()
    await asyncio.sleep(0.3)
    assert collector.requests == 0 and collector.spans() == []


def test_standard_otel_endpoint_variable_is_honoured(
    collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint)
    tracing.configure("tests")
    try:
        assert tracing.exporting()
        with tracing.span("via the standard variable"):
            pass
        assert tracing.flush()
    finally:
        tracing.shutdown()
    assert [s.name for s in collector.spans()] == ["via the standard variable"]


def test_otlp_endpoint_setting_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VESSEL_CONFIG", raising=False)
    monkeypatch.setenv("VESSEL_OTLP_ENDPOINT", "http://collector.example:4317")
    assert load_settings().otlp_endpoint == "http://collector.example:4317"
    monkeypatch.setenv("VESSEL_OTLP_ENDPOINT", "collector.example:4317")
    with pytest.raises(ConfigError, match="otlp_endpoint"):
        load_settings()
