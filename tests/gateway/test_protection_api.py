"""The protection API through a real gateway over TLS, against real NATS and a real S3
bucket: snapshots, the backup catalog, schedules, buckets, backups of a snapshot.

Protection does not run here (see protection_harness): these tests check what the gateway
answers, and the commands it sends."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import grpc
import pytest

from tests.gateway.harness import Pki, bearer, unique
from tests.gateway.protection_harness import (
    ACCESS_ENV,
    SECRET_ENV,
    Names,
    World,
    catalog_doc,
    last_command,
    open_world,
    violations,
)
from vessel.api.v1 import protection_pb2 as ppb
from vessel.api.v1 import protection_pb2_grpc as prpc
from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc
from vessel.contracts import subjects
from vessel.contracts.commands import CreateBackup
from vessel.contracts.protection import (
    CreateAppSnapshot,
    DeleteAppSnapshot,
    DeleteBackup,
    PutSchedule,
    RemoveSchedule,
)
from vessel_dev.rig.processes import NatsServer, S3Server

N = Names()


@pytest.fixture(scope="module")
async def world(nats_server: NatsServer, s3_server: S3Server, pki: Pki) -> AsyncIterator[World]:
    async with open_world(N, "gateway-protection", nats_server, s3_server, pki) as w:
        yield w


def snapshots(w: World) -> prpc.SnapshotServiceStub:
    return prpc.SnapshotServiceStub(w.channel)


def backups(w: World) -> prpc.BackupCatalogServiceStub:
    return prpc.BackupCatalogServiceStub(w.channel)


def schedules(w: World) -> prpc.ScheduleServiceStub:
    return prpc.ScheduleServiceStub(w.channel)


def admin(w: World) -> list[tuple[str, str]] | None:
    return bearer(w.tokens["admin"])


async def code_of(call: object) -> grpc.StatusCode:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


# ---- snapshots ----


async def test_create_snapshot_sends_the_command_and_retries_are_idempotent(world: World) -> None:
    request_id = unique("snap")
    request = ppb.CreateSnapshotRequest(app_id=N.shop_app, bucket="default", request_id=request_id)
    op = await snapshots(world).CreateSnapshot(request, metadata=admin(world))
    assert op.id == f"snapshot-{request_id}" and op.kind == "snapshot" and op.phase == "New"
    command = await last_command(world.bus, subjects.CREATE_SNAPSHOT)
    assert isinstance(command, CreateAppSnapshot)
    assert (command.operation_id, command.app_id, command.bucket) == (
        op.id,
        N.shop_app,
        "default",
    )
    again = await snapshots(world).CreateSnapshot(request, metadata=admin(world))
    assert again.id == op.id and again.created == op.created
    got = await rpc.OperationServiceStub(world.channel).GetOperation(
        pb.GetOperationRequest(id=op.id), metadata=admin(world)
    )
    assert got.app_id == N.shop_app


async def test_snapshot_get_list_filter_and_paginate(world: World) -> None:
    snap = await snapshots(world).GetSnapshot(
        ppb.GetSnapshotRequest(id=N.snapshot(0)), metadata=admin(world)
    )
    assert (snap.app_id, snap.cluster, snap.namespace, snap.phase) == (
        N.shop_app,
        N.east,
        "shop",
        "Completed",
    )
    assert snap.volumes[0].volume_snapshot == f"vs-{N.snapshot(0)}"
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await snapshots(world).ListSnapshots(
            ppb.ListSnapshotsRequest(cluster=N.east, page_size=1, page_token=token),
            metadata=admin(world),
        )
        seen += [s.id for s in page.snapshots]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted({N.snapshot(i) for i in (0, 1, 2, 9)}) and pages == 4
    shop = await snapshots(world).ListSnapshots(
        ppb.ListSnapshotsRequest(app_id=N.books_app), metadata=admin(world)
    )
    assert [s.id for s in shop.snapshots] == [N.snapshot(9)]
    for bad in (ppb.ListSnapshotsRequest(page_size=-1), ppb.ListSnapshotsRequest(page_token="@")):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await snapshots(world).ListSnapshots(bad, metadata=admin(world))
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert set(violations(error.value)) <= {"page_size", "page_token"}


async def test_delete_snapshot_sends_the_command(world: World) -> None:
    request_id = unique("del")
    request = ppb.DeleteSnapshotRequest(id=N.snapshot(1), request_id=request_id)
    op = await snapshots(world).DeleteSnapshot(request, metadata=admin(world))
    assert op.kind == "delete-snapshot" and op.app_id == N.shop_app
    command = await last_command(world.bus, subjects.DELETE_SNAPSHOT)
    assert isinstance(command, DeleteAppSnapshot)
    assert (command.operation_id, command.snapshot_id) == (op.id, N.snapshot(1))
    again = await snapshots(world).DeleteSnapshot(request, metadata=admin(world))
    assert again.id == op.id == f"delete-snapshot-{request_id}"


async def test_unknown_things_are_not_found(world: World) -> None:
    ghost_app = f"{N.east}.shop.ghost"
    calls = {
        "snapshot of unknown app": snapshots(world).CreateSnapshot(
            ppb.CreateSnapshotRequest(app_id=ghost_app, bucket="default"), metadata=admin(world)
        ),
        "snapshot into unknown bucket": snapshots(world).CreateSnapshot(
            ppb.CreateSnapshotRequest(app_id=N.shop_app, bucket="nowhere"), metadata=admin(world)
        ),
        "get unknown snapshot": snapshots(world).GetSnapshot(
            ppb.GetSnapshotRequest(id="snap-nope"), metadata=admin(world)
        ),
        "delete unknown snapshot": snapshots(world).DeleteSnapshot(
            ppb.DeleteSnapshotRequest(id="snap-nope"), metadata=admin(world)
        ),
        "backups of unknown bucket": backups(world).ListBackups(
            ppb.ListBackupsRequest(bucket="nowhere"), metadata=admin(world)
        ),
        "get unknown backup": backups(world).GetBackup(
            ppb.GetBackupRequest(bucket="default", id="bk-nope"), metadata=admin(world)
        ),
        "unfinished backup (no catalog)": backups(world).GetBackup(
            ppb.GetBackupRequest(bucket="default", id=N.backup(8)), metadata=admin(world)
        ),
        "delete unknown backup": backups(world).DeleteBackup(
            ppb.DeleteBackupRequest(bucket="default", id="bk-nope"), metadata=admin(world)
        ),
        "unknown bucket": prpc.BucketServiceStub(world.channel).GetBucket(
            ppb.GetBucketRequest(name="nowhere"), metadata=admin(world)
        ),
        "get unknown schedule": schedules(world).GetSchedule(
            ppb.GetScheduleRequest(id="sched-nope"), metadata=admin(world)
        ),
        "delete unknown schedule": schedules(world).DeleteSchedule(
            ppb.DeleteScheduleRequest(id="sched-nope"), metadata=admin(world)
        ),
        "schedule of unknown app": schedules(world).CreateSchedule(
            ppb.CreateScheduleRequest(schedule=_schedule(ghost_app)), metadata=admin(world)
        ),
        "backup of unknown snapshot": rpc.BackupServiceStub(world.channel).CreateBackup(
            pb.CreateBackupRequest(app_id=N.shop_app, bucket="default", snapshot_id="snap-nope"),
            metadata=admin(world),
        ),
        "backup of another app's snapshot": rpc.BackupServiceStub(world.channel).CreateBackup(
            pb.CreateBackupRequest(app_id=N.shop_app, bucket="default", snapshot_id=N.snapshot(9)),
            metadata=admin(world),
        ),
    }
    codes = {what: await code_of(call) for what, call in calls.items()}
    assert codes == dict.fromkeys(calls, grpc.StatusCode.NOT_FOUND)


async def test_backup_of_an_existing_snapshot(world: World) -> None:
    op = await rpc.BackupServiceStub(world.channel).CreateBackup(
        pb.CreateBackupRequest(app_id=N.shop_app, bucket="default", snapshot_id=N.snapshot(2)),
        metadata=admin(world),
    )
    command = await last_command(world.bus, subjects.CREATE_BACKUP)
    assert isinstance(command, CreateBackup)
    assert (command.operation_id, command.snapshot_id) == (op.id, N.snapshot(2))
    fresh = await rpc.BackupServiceStub(world.channel).CreateBackup(
        pb.CreateBackupRequest(app_id=N.shop_app, bucket="default"), metadata=admin(world)
    )
    command = await last_command(world.bus, subjects.CREATE_BACKUP)
    assert isinstance(command, CreateBackup)
    assert command.operation_id == fresh.id and command.snapshot_id is None


# ---- the backup catalog ----


async def test_list_backups_pages_through_the_bucket_catalog(world: World) -> None:
    seen: list[str] = []
    token = ""
    while True:
        page = await backups(world).ListBackups(
            ppb.ListBackupsRequest(bucket="default", page_size=2, page_token=token),
            metadata=admin(world),
        )
        assert len(page.backups) <= 2
        seen += [b.id for b in page.backups]
        token = page.next_page_token
        if not token:
            break
    expected = sorted([N.backup(i) for i in range(5)] + [N.backup(9)])
    assert seen == expected  # each once, in order; the unfinished backup 8 is not listed
    shop = await backups(world).ListBackups(
        ppb.ListBackupsRequest(bucket="default", namespace="books"), metadata=admin(world)
    )
    assert [b.id for b in shop.backups] == [N.backup(9)]
    one = await backups(world).GetBackup(
        ppb.GetBackupRequest(bucket="default", id=N.backup(3)), metadata=admin(world)
    )
    assert (one.app_id, one.cluster, list(one.namespaces), one.bytes) == (
        N.shop_app,
        N.east,
        ["shop"],
        4096,
    )
    assert one.completed.ToDatetime(UTC) > one.created.ToDatetime(UTC)
    assert one.volumes[0].claim == "data" and one.volumes[0].snapshot_id == "ab" * 32


async def test_a_bucket_written_by_another_vessel_is_listed_from_its_objects_alone(
    world: World,
) -> None:
    """The dr bucket was filled by "another" Vessel: catalog objects, nothing in KV. One is
    not JSON, one has a format from the future, one lacks its cluster: each is reported as
    an item with its error, and the good ones are listed."""
    run = N.run
    when = datetime(2025, 6, 1, tzinfo=UTC)
    good = [f"dr-{run}-a", f"dr-{run}-b"]
    for backup_id in good:
        doc = catalog_doc(backup_id, "far.prod.db", "far", "prod", when, namespaces=["logs"])
        world.dr_store.put_bytes(f"backups/{backup_id}/backup.json", json.dumps(doc).encode())
    broken = {
        f"dr-{run}-c": b"{not json",
        f"dr-{run}-d": json.dumps(
            catalog_doc(f"dr-{run}-d", "far.prod.db", "far", "prod", when, format="vessel.backup/9")
        ).encode(),
        f"dr-{run}-e": json.dumps({"format": "vessel.backup/1", "namespace": "prod"}).encode(),
    }
    for backup_id, body in broken.items():
        world.dr_store.put_bytes(f"backups/{backup_id}/backup.json", body)
    reply = await backups(world).ListBackups(
        ppb.ListBackupsRequest(bucket="dr"), metadata=admin(world)
    )
    by_id = {b.id: b for b in reply.backups}
    assert set(by_id) == set(good) | set(broken)
    for backup_id in good:
        assert by_id[backup_id].error == "" and by_id[backup_id].cluster == "far"
        assert list(by_id[backup_id].namespaces) == ["prod", "logs"]
    assert "not JSON" in by_id[f"dr-{run}-c"].error
    assert "vessel.backup/9" in by_id[f"dr-{run}-d"].error
    assert "cluster" in by_id[f"dr-{run}-e"].error and by_id[f"dr-{run}-e"].cluster == ""
    filtered = await backups(world).ListBackups(
        ppb.ListBackupsRequest(bucket="dr", cluster="far"), metadata=admin(world)
    )
    assert sorted(b.id for b in filtered.backups) == good  # unreadable ones match no filter
    scoped = await backups(world).ListBackups(
        ppb.ListBackupsRequest(bucket="dr"), metadata=bearer(world.tokens["viewer"])
    )
    assert list(scoped.backups) == []  # neither far/prod nor unreadable catalogs are in scope


async def test_delete_backup_sends_the_command_and_is_idempotent(world: World) -> None:
    request_id = unique("delbk")
    request = ppb.DeleteBackupRequest(bucket="default", id=N.backup(4), request_id=request_id)
    op = await backups(world).DeleteBackup(request, metadata=bearer(world.tokens["owner"]))
    assert op.kind == "delete-backup" and op.backup_id == N.backup(4)
    command = await last_command(world.bus, subjects.DELETE_BACKUP)
    assert isinstance(command, DeleteBackup)
    assert (command.operation_id, command.backup_id, command.bucket) == (
        op.id,
        N.backup(4),
        "default",
    )
    again = await backups(world).DeleteBackup(request, metadata=bearer(world.tokens["owner"]))
    assert again.id == op.id


# ---- schedules ----


def _schedule(app_id: str, **fields: object) -> ppb.Schedule:
    base: dict[str, object] = {
        "app_id": app_id,
        "kind": "backup",
        "bucket": "default",
        "frequency": "daily",
        "hour": 2,
        "minute": 30,
        "retention": ppb.Retention(daily=7, weekly=4, floor=3),
    }
    base.update(fields)
    return ppb.Schedule(**base)  # type: ignore[arg-type]


async def test_create_schedule_sends_it_and_a_retry_returns_the_same(world: World) -> None:
    request_id = unique("sch")
    request = ppb.CreateScheduleRequest(
        schedule=_schedule(N.shop_app, frequency="cron", cron="*/15 * * * *", hour=0, minute=0),
        request_id=request_id,
    )
    made = await schedules(world).CreateSchedule(request, metadata=bearer(world.tokens["owner"]))
    assert made.id == f"schedule-{request_id}" and made.cron == "*/15 * * * *"
    assert made.retention.floor == 3 and not made.paused
    command = await last_command(world.bus, subjects.PUT_SCHEDULE)
    assert isinstance(command, PutSchedule)
    assert command.schedule.id == made.id and command.schedule.retention.weekly == 4
    assert command.schedule.enabled
    stored = await world.bus.kv("schedules")  # protection stores it, as it would
    await stored.put(made.id, command.schedule.model_dump_json().encode())
    again = await schedules(world).CreateSchedule(request, metadata=bearer(world.tokens["owner"]))
    assert again == made  # the retry is answered, not refused as ALREADY_EXISTS
    clash = ppb.CreateScheduleRequest(
        schedule=_schedule(N.shop_app, id=made.id), request_id=unique("clash")
    )
    for _ in range(2):  # a refused request is not recorded: its retry is refused too
        with pytest.raises(grpc.aio.AioRpcError) as exists:
            await schedules(world).CreateSchedule(clash, metadata=admin(world))
        assert exists.value.code() == grpc.StatusCode.ALREADY_EXISTS
    default_floor = await schedules(world).CreateSchedule(
        ppb.CreateScheduleRequest(schedule=_schedule(N.shop_app, retention=ppb.Retention(daily=3))),
        metadata=admin(world),
    )
    assert default_floor.retention.floor == 1  # the contract's default, not proto's zero


async def test_schedule_get_list_update_delete(world: World) -> None:
    got = await schedules(world).GetSchedule(
        ppb.GetScheduleRequest(id=N.schedule), metadata=bearer(world.tokens["viewer"])
    )
    assert (got.app_id, got.frequency, got.hour, got.minute) == (N.shop_app, "daily", 2, 30)
    listed = await schedules(world).ListSchedules(
        ppb.ListSchedulesRequest(app_id=N.books_app), metadata=admin(world)
    )
    assert [s.id for s in listed.schedules] == [f"{N.schedule}-b"]
    first = await schedules(world).ListSchedules(
        ppb.ListSchedulesRequest(page_size=1), metadata=admin(world)
    )
    assert len(first.schedules) == 1 and first.next_page_token
    updated = await schedules(world).UpdateSchedule(
        ppb.UpdateScheduleRequest(schedule=_schedule(N.shop_app, id=N.schedule, paused=True)),
        metadata=bearer(world.tokens["owner"]),
    )
    assert updated.paused
    command = await last_command(world.bus, subjects.PUT_SCHEDULE)
    assert isinstance(command, PutSchedule)
    assert command.schedule.id == N.schedule and not command.schedule.enabled
    with pytest.raises(grpc.aio.AioRpcError) as moved:
        await schedules(world).UpdateSchedule(
            ppb.UpdateScheduleRequest(schedule=_schedule(N.books_app, id=N.schedule)),
            metadata=admin(world),
        )
    assert moved.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "schedule.app_id" in violations(moved.value)
    with pytest.raises(grpc.aio.AioRpcError) as exists:
        await schedules(world).CreateSchedule(
            ppb.CreateScheduleRequest(schedule=_schedule(N.shop_app, id=N.schedule)),
            metadata=admin(world),
        )
    assert exists.value.code() == grpc.StatusCode.ALREADY_EXISTS
    removed = await schedules(world).DeleteSchedule(
        ppb.DeleteScheduleRequest(id=N.schedule), metadata=bearer(world.tokens["owner"])
    )
    assert removed.id == N.schedule
    command = await last_command(world.bus, subjects.REMOVE_SCHEDULE)
    assert isinstance(command, RemoveSchedule) and command.schedule_id == N.schedule


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"frequency": "cron", "cron": "61 * * * *"}, "schedule.cron"),
        ({"frequency": "cron", "cron": "* * *"}, "schedule.cron"),
        ({"frequency": "cron", "cron": "0 0 30 2 *"}, "schedule.cron"),
        ({"cron": "0 3 * * *"}, "schedule.cron"),  # cron with frequency daily
        ({"frequency": "fortnightly"}, "schedule.frequency"),
        ({"hour": 24}, "schedule.hour"),
        ({"retention": ppb.Retention(daily=-1)}, "schedule.retention.daily"),
        ({"retention": ppb.Retention(floor=0)}, "schedule.retention"),
        ({"kind": "clone"}, "schedule.kind"),
    ],
)
async def test_bad_schedules_are_invalid_with_field_violations(
    world: World, fields: dict[str, object], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await schedules(world).CreateSchedule(
            ppb.CreateScheduleRequest(schedule=_schedule(N.shop_app, **fields)),
            metadata=admin(world),
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in violations(error.value), violations(error.value)


# ---- buckets ----


async def test_buckets_are_listed_without_credentials(world: World) -> None:
    reply = await prpc.BucketServiceStub(world.channel).ListBuckets(
        ppb.ListBucketsRequest(), metadata=bearer(world.tokens["viewer"])
    )
    assert [b.name for b in reply.buckets] == ["default", "dr"]
    default = reply.buckets[0]
    assert (default.bucket, default.repository) == (world.store.bucket, "repository")
    assert default.endpoint == world.s3_endpoint and not default.secure
    text = str(reply)
    assert ACCESS_ENV not in text and SECRET_ENV not in text
    got = await prpc.BucketServiceStub(world.channel).GetBucket(
        ppb.GetBucketRequest(name="dr"), metadata=bearer(world.tokens["viewer"])
    )
    assert got.bucket == world.dr_store.bucket
