"""Every role and scope against every protection RPC, over TLS: viewers read, members
create, owners delete and manage schedules; a token scoped to EAST/books touches nothing of
EAST/shop, and its lists hold only what is in its scope."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest

from tests.gateway.harness import Pki, bearer, unique
from tests.gateway.protection_harness import (
    Names,
    World,
    open_world,
    reason,
)
from vessel.api.v1 import protection_pb2 as ppb
from vessel.api.v1 import protection_pb2_grpc as prpc
from vessel_dev.rig.processes import NatsServer, S3Server

N = Names()


@pytest.fixture(scope="module")
async def world(nats_server: NatsServer, s3_server: S3Server, pki: Pki) -> AsyncIterator[World]:
    async with open_world(N, "gateway-protection-roles", nats_server, s3_server, pki) as w:
        yield w


Call = Callable[[World, list[tuple[str, str]] | None], Awaitable[Any]]


def _schedule(schedule_id: str) -> ppb.Schedule:
    return ppb.Schedule(
        id=schedule_id,
        app_id=N.shop_app,
        kind="snapshot",
        bucket="default",
        frequency="hourly",
        retention=ppb.Retention(hourly=24),
    )


async def _watch(w: World, md: list[tuple[str, str]] | None) -> Any:
    stream = prpc.ProgressServiceStub(w.channel).WatchOperation(
        ppb.WatchOperationRequest(id=N.operation, timeout_seconds=5), metadata=md
    )
    return [update async for update in stream]


CALLS: dict[str, tuple[str, Call]] = {
    # name: (verb class, call)
    "CreateSnapshot": (
        "create",
        lambda w, md: prpc.SnapshotServiceStub(w.channel).CreateSnapshot(
            ppb.CreateSnapshotRequest(app_id=N.shop_app, bucket="default"), metadata=md
        ),
    ),
    "ListSnapshots": (
        "list",
        lambda w, md: prpc.SnapshotServiceStub(w.channel).ListSnapshots(
            ppb.ListSnapshotsRequest(), metadata=md
        ),
    ),
    "GetSnapshot": (
        "read",
        lambda w, md: prpc.SnapshotServiceStub(w.channel).GetSnapshot(
            ppb.GetSnapshotRequest(id=N.snapshot(0)), metadata=md
        ),
    ),
    "DeleteSnapshot": (
        "delete",
        lambda w, md: prpc.SnapshotServiceStub(w.channel).DeleteSnapshot(
            ppb.DeleteSnapshotRequest(id=N.snapshot(0)), metadata=md
        ),
    ),
    "ListBackups": (
        "list",
        lambda w, md: prpc.BackupCatalogServiceStub(w.channel).ListBackups(
            ppb.ListBackupsRequest(bucket="default"), metadata=md
        ),
    ),
    "GetBackup": (
        "read",
        lambda w, md: prpc.BackupCatalogServiceStub(w.channel).GetBackup(
            ppb.GetBackupRequest(bucket="default", id=N.backup(0)), metadata=md
        ),
    ),
    "DeleteBackup": (
        "delete",
        lambda w, md: prpc.BackupCatalogServiceStub(w.channel).DeleteBackup(
            ppb.DeleteBackupRequest(bucket="default", id=N.backup(0)), metadata=md
        ),
    ),
    "CreateSchedule": (
        "delete",  # managing schedules is an owner's task
        lambda w, md: prpc.ScheduleServiceStub(w.channel).CreateSchedule(
            ppb.CreateScheduleRequest(schedule=_schedule(unique("s"))), metadata=md
        ),
    ),
    "UpdateSchedule": (
        "delete",
        lambda w, md: prpc.ScheduleServiceStub(w.channel).UpdateSchedule(
            ppb.UpdateScheduleRequest(schedule=_schedule(N.schedule)), metadata=md
        ),
    ),
    "GetSchedule": (
        "read",
        lambda w, md: prpc.ScheduleServiceStub(w.channel).GetSchedule(
            ppb.GetScheduleRequest(id=N.schedule), metadata=md
        ),
    ),
    "ListSchedules": (
        "list",
        lambda w, md: prpc.ScheduleServiceStub(w.channel).ListSchedules(
            ppb.ListSchedulesRequest(), metadata=md
        ),
    ),
    "DeleteSchedule": (
        "delete",
        lambda w, md: prpc.ScheduleServiceStub(w.channel).DeleteSchedule(
            ppb.DeleteScheduleRequest(id=N.schedule), metadata=md
        ),
    ),
    "ListBuckets": (
        "list",
        lambda w, md: prpc.BucketServiceStub(w.channel).ListBuckets(
            ppb.ListBucketsRequest(), metadata=md
        ),
    ),
    "GetBucket": (
        "list",  # buckets belong to no namespace
        lambda w, md: prpc.BucketServiceStub(w.channel).GetBucket(
            ppb.GetBucketRequest(name="default"), metadata=md
        ),
    ),
    "WatchOperation": ("read", _watch),
}
ROLE_NEEDED = {"list": "viewer", "read": "viewer", "create": "member", "delete": "owner"}
RANK = ["viewer", "member", "owner", "admin"]
PRINCIPALS = ["admin", "owner", "member", "viewer", "owner-books", "none"]


def expected(principal: str, call: str) -> str:
    verb = CALLS[call][0]
    if principal == "none":
        return "UNAUTHENTICATED"
    role = "owner" if principal == "owner-books" else principal
    if RANK.index(role) < RANK.index(ROLE_NEEDED[verb]):
        return "MISSING_ROLE"
    if principal == "owner-books" and verb != "list":  # every object here is EAST/shop
        return "OUT_OF_SCOPE"
    return "ok"


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("principal", PRINCIPALS)
async def test_role_and_scope_matrix(world: World, principal: str, call: str) -> None:
    md = bearer(world.tokens[principal]) if principal != "none" else None
    want = expected(principal, call)
    try:
        await CALLS[call][1](world, md)
    except grpc.aio.AioRpcError as exc:
        got = {
            grpc.StatusCode.UNAUTHENTICATED: "UNAUTHENTICATED",
            grpc.StatusCode.PERMISSION_DENIED: reason(exc),
        }.get(exc.code(), f"{exc.code().name}: {exc.details()}")
        assert got == want, exc.details()
        if want == "MISSING_ROLE":
            assert f"needs role {ROLE_NEEDED[CALLS[call][0]]}" in (exc.details() or "")
        return
    assert want == "ok", f"{principal} {call} succeeded, expected {want}"


async def test_lists_hold_only_what_the_scope_covers(world: World) -> None:
    books = bearer(world.tokens["owner-books"])
    snaps = await prpc.SnapshotServiceStub(world.channel).ListSnapshots(
        ppb.ListSnapshotsRequest(cluster=N.east), metadata=books
    )
    assert [s.id for s in snaps.snapshots] == [N.snapshot(9)]
    found = await prpc.BackupCatalogServiceStub(world.channel).ListBackups(
        ppb.ListBackupsRequest(bucket="default"), metadata=books
    )
    assert [b.id for b in found.backups] == [N.backup(9)]
    scheds = await prpc.ScheduleServiceStub(world.channel).ListSchedules(
        ppb.ListSchedulesRequest(), metadata=books
    )
    assert [s.id for s in scheds.schedules if N.run in s.id] == [f"{N.schedule}-b"]
    viewer = await prpc.BackupCatalogServiceStub(world.channel).ListBackups(
        ppb.ListBackupsRequest(bucket="default"), metadata=bearer(world.tokens["viewer"])
    )
    assert N.backup(9) not in {b.id for b in viewer.backups} and len(viewer.backups) == 5


async def test_a_books_owner_cannot_schedule_or_snapshot_a_shop_app(world: World) -> None:
    books = bearer(world.tokens["owner-books"])
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await prpc.ScheduleServiceStub(world.channel).CreateSchedule(
            ppb.CreateScheduleRequest(schedule=_schedule(unique("s"))), metadata=books
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "'shop'" in (denied.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as unknown:  # a shop snapshot: out of scope
        await prpc.SnapshotServiceStub(world.channel).GetSnapshot(
            ppb.GetSnapshotRequest(id=N.snapshot(1)), metadata=books
        )
    assert unknown.value.code() == grpc.StatusCode.PERMISSION_DENIED
