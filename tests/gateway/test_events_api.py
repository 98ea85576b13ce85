"""`WatchEvents`: events through the gateway reach each caller only within its scope."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest
from google.protobuf.json_format import MessageToDict
from google.protobuf.timestamp_pb2 import Timestamp

from tests.gateway.harness import Pki, bearer
from tests.gateway.protection_harness import Names, World, open_world
from vessel.api.v1 import infra_pb2 as ipb
from vessel.api.v1 import infra_pb2_grpc as irpc
from vessel.contracts import subjects
from vessel.contracts.buckets import BucketChanged
from vessel.contracts.events import (
    BackupEvent,
    ClusterChanged,
    ClusterRecord,
    RestoreEvent,
    VolumeProvisioned,
)
from vessel_dev.rig.servers import S3, Nats

N = Names()


@pytest.fixture(scope="module")
async def world(nats_server: Nats, s3_server: S3, pki: Pki) -> AsyncIterator[World]:
    async with open_world(N, "gateway-events", nats_server, s3_server, pki) as w:
        yield w


def volume(cluster: str, namespace: str) -> VolumeProvisioned:
    return VolumeProvisioned(
        cluster=cluster,
        namespace=namespace,
        claim="data",
        pv_name="pv-1",
        volume_id="v1",
        backend="local",
        backend_type="dir",
        size_bytes=1,
        path="/v",
    )


async def watch(w: World, token: str, since: Timestamp) -> list[ipb.Event]:
    """Every event the token is shown from `since`, until the stream has been quiet."""
    stub = irpc.EventServiceStub(w.channel)
    call = stub.WatchEvents(
        ipb.WatchEventsRequest(since=since), metadata=bearer(w.tokens[token]), timeout=4
    )
    seen = []
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        async for event in call:
            seen.append(event)
    assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    return seen


def data(event: ipb.Event) -> dict[str, Any]:
    return MessageToDict(event.data)


def ours(events: list[ipb.Event], marker: str) -> set[str]:
    """This test's events that carry an operation id, by that id."""
    ids = {str(data(e).get("operation_id", "")) for e in events}
    return {i for i in ids if i.startswith(marker)}


async def test_each_caller_sees_only_the_events_its_scope_covers(world: World) -> None:
    since = Timestamp()
    since.FromDatetime(datetime.now(UTC))
    run = f"ev-{uuid.uuid4().hex[:6]}"
    published = {
        f"{run}-shop-backup": (
            subjects.BACKUP_COMPLETED,
            BackupEvent(
                backup_id="b",
                operation_id=f"{run}-shop-backup",
                app_id=N.shop_app,
                bucket="default",
            ),
        ),
        f"{run}-books-backup": (
            subjects.BACKUP_COMPLETED,
            BackupEvent(
                backup_id="b",
                operation_id=f"{run}-books-backup",
                app_id=N.books_app,
                bucket="default",
            ),
        ),
        f"{run}-restore-copy": (
            subjects.RESTORE_COMPLETED,
            RestoreEvent(
                operation_id=f"{run}-restore-copy",
                backup_id="b",
                target_cluster=N.west,
                namespace_mapping={"shop": "shop-copy"},
            ),
        ),
        f"{run}-bucket": (
            subjects.BUCKET_ADDED,
            BucketChanged(operation_id=f"{run}-bucket", name="x", endpoint="e:1", bucket="x"),
        ),
    }
    for message, payload in published.values():
        await world.bus.publish(message, payload)
    # Events without an operation id: told apart by cluster and namespace.
    await world.bus.publish(subjects.VOLUME_PROVISIONED, volume(N.east, "books"))
    record = ClusterRecord(
        id=N.east, source="config", state="Available", registered=datetime.now(UTC)
    )
    await world.bus.publish(
        subjects.CLUSTER_REGISTERED, ClusterChanged(cluster=record), cluster=N.east
    )

    admin, member, books = await asyncio.gather(
        watch(world, "admin", since),
        watch(world, "member", since),
        watch(world, "owner-books", since),
    )
    assert ours(admin, run) == set(published)
    # member: clusters east and west, namespaces shop and shop-copy.
    assert ours(member, run) == {f"{run}-shop-backup", f"{run}-restore-copy"}
    assert ours(books, run) == {f"{run}-books-backup"}
    provisioned = subjects.VOLUME_PROVISIONED.type
    assert [data(e)["namespace"] for e in books if e.type == provisioned] == ["books"]
    assert not [e for e in member if e.type == provisioned and data(e)["cluster"] == N.east]
    # A cluster event may concern any namespace: not for namespace-limited tokens.
    registered = subjects.CLUSTER_REGISTERED.type
    assert [e for e in admin if e.type == registered and data(e)["cluster"]["id"] == N.east]
    assert not [e for e in member + books if e.type == registered]


async def test_type_filter_and_limit(world: World) -> None:
    since = Timestamp()
    since.FromDatetime(datetime.now(UTC))
    for n in range(3):
        await world.bus.publish(subjects.VOLUME_PROVISIONED, volume(N.east, f"shop{n}"))
    stub = irpc.EventServiceStub(world.channel)
    call = stub.WatchEvents(
        ipb.WatchEventsRequest(since=since, types=["io.vessel.provisioner.volume"], max_events=2),
        metadata=bearer(world.tokens["admin"]),
        timeout=10,
    )
    events = [e async for e in call]
    assert [e.type for e in events] == [subjects.VOLUME_PROVISIONED.type] * 2


async def test_a_negative_limit_is_invalid(world: World) -> None:
    stub = irpc.EventServiceStub(world.channel)
    call = stub.WatchEvents(
        ipb.WatchEventsRequest(max_events=-1), metadata=bearer(world.tokens["viewer"]), timeout=5
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        async for _ in call:
            pass
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "max_events" in str(refused.value.details())


async def test_the_cli_tails_through_the_gateway_within_its_scope(world: World, run: Any) -> None:
    """`vessel events tail` with a books-scoped token: the shop event before the books one
    is not shown, so the first line is the books event."""
    since = datetime.now(UTC)
    for app_id in (N.shop_app, N.books_app):
        await world.bus.publish(
            subjects.BACKUP_STARTED,
            BackupEvent(backup_id="b", operation_id=f"cli-{app_id}", app_id=app_id, bucket="d"),
        )
    code, out, err = await run(
        "events", "tail", "--since", since.isoformat(), "--type", "io.vessel.protection.backup",
        "--count", "1", "-o", "json", "--token", world.tokens["owner-books"],
    )  # fmt: skip
    assert code == 0, err
    (line,) = out.strip().splitlines()
    event = json.loads(line)
    assert event["type"] == subjects.BACKUP_STARTED.type
    assert event["data"]["app_id"] == N.books_app and event["specversion"] == "1.0"
