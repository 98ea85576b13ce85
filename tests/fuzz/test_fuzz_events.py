"""Hostile messages on every command and event subject of the catalog, into the running
services: none of them crashes, malformed commands are dead-lettered naming their type,
and the services still answer afterwards."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.messages import hostile_text, json_values
from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc
from vessel.bus.nats_port import Bus
from vessel.contracts import queries, subjects
from vessel.contracts.envelope import new_event
from vessel_dev.rig.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

MESSAGES = sorted(subjects.ALL, key=lambda m: m.type)
PER_TYPE = 25
SENT: dict[str, int] = {}


class BusThread:
    """A bus on its own event loop thread, for synchronous hypothesis tests."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.bus = Bus(source="/clusters/test/fuzz")
        self.run(self.bus.connect(url, name="fuzz-events"))

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def close(self) -> None:
        self.run(self.bus.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def wire(stack: Stack) -> Iterator[BusThread]:
    bus = BusThread(stack.nats.url)
    yield bus
    bus.close()


bodies = st.one_of(
    st.dictionaries(hostile_text, json_values, max_size=6).map(lambda v: ("data", v)),
    st.binary(max_size=256).map(lambda b: ("raw", b)),  # not even an envelope
    st.dictionaries(st.text(max_size=12), json_values, max_size=5).map(lambda d: ("envelope", d)),
)


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: m.type)
def test_hostile_messages_on_every_subject(wire: BusThread, message: subjects.Message) -> None:
    subject = (
        message.subject_for("cluster-a") if "{cluster}" in message.subject else (message.subject)
    )

    @settings(
        max_examples=PER_TYPE,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(body=bodies)
    def attack(body: tuple[str, Any]) -> None:
        kind, value = body
        if kind == "data":
            event = new_event(message.type, "/fuzz", value, None, None)
            payload = event.model_dump_json(exclude_none=True).encode()
        elif kind == "envelope":
            payload = json.dumps({**value, "type": message.type}).encode()
        else:
            payload = value
        headers = {"Nats-Msg-Id": uuid.uuid4().hex}
        wire.run(wire.bus.js.publish(subject, payload, headers=headers))
        SENT[message.type] = SENT.get(message.type, 0) + 1

    attack()


async def test_services_survived_and_dead_lettered_the_commands(stack: Stack) -> None:
    if not SENT:
        pytest.skip("run together with the hostile messages")  # selected alone with -k
    dead = [p.name for p in stack.services if not p.alive()]
    assert not dead, f"services died: {dead}\n{stack.logs()}"
    bus = Bus(source="/clusters/test/fuzz-check")
    await bus.connect(stack.nats.url, name="fuzz-check")
    consumed = {m.type for m in MESSAGES if m.kind == "command"}  # every one has a consumer
    seen: set[str] = set()
    try:
        async with asyncio.timeout(60):
            since = datetime(2000, 1, 1, tzinfo=UTC)
            async for _, event in bus.tail(subjects.DEAD_LETTERED.subject, since=since):
                if event.data.get("type") in consumed:
                    seen.add(event.data["type"])
                if seen >= consumed:
                    break
    except TimeoutError:
        pass
    finally:
        await bus.close()
    assert seen >= consumed, f"no dead letter for {sorted(consumed - seen)}"
    with grpc.insecure_channel(stack.gateway) as channel:
        rpc.AppServiceStub(channel).ListApps(pb.ListAppsRequest(), timeout=10)


QUERIES = [
    queries.QUERY_APPS,
    queries.QUERY_APP,
    queries.QUERY_CLUSTERS,
    queries.QUERY_JOIN_TOKEN,
    queries.QUERY_CATALOG,
    queries.QUERY_RESTORE_PREFLIGHT,
    queries.QUERY_PROVISIONER_BACKENDS.format(cluster="cluster-a"),
    queries.QUERY_PROVISIONER_STORAGECLASSES.format(cluster="cluster-a"),
    queries.QUERY_PROVISIONER_VOLUMES.format(cluster="cluster-a"),
    queries.QUERY_AGENT.format(cluster="cluster-a", verb="get"),
    queries.XFER_OPEN.format(cluster="cluster-b"),
]


@pytest.mark.parametrize("subject", QUERIES)
async def test_every_query_answers_bad_input_in_one_line_naming_the_field(
    stack: Stack, subject: str
) -> None:
    bus = Bus(source="/clusters/test/fuzz-queries")
    await bus.connect(stack.nats.url, name="fuzz-queries")
    try:
        reply = await bus.request(subject, b'{"no_such_field": 1}', wait=10)
    finally:
        await bus.close()
    text = reply.decode()
    error = json.loads(text)["error"] if text.startswith("{") else text[1:]
    assert f"invalid request on {subject}: " in error, error
    assert "no_such_field: Extra inputs are not permitted" in error, error
    assert "\n" not in error, error
