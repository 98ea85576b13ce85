"""`vessel snapshot|backup|restore|schedule|bucket`: protecting apps through the gateway.

Long-running verbs return the operation at once; `--wait` follows it live (one progress
line per volume on stderr) and prints the finished operation.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from vessel.api.v1 import protection_pb2 as ppb
from vessel.api.v1 import protection_pb2_grpc as prpc
from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc
from vessel_cli.options import namespaced
from vessel_cli.progress import ProgressView
from vessel_cli.protection_requests import restore_request, schedule_message

LIST_PAGE = 500
LAST_RUN_WINDOW = 200
"""How many of an app's newest operations are searched for a schedule's last run."""


def watch(ch: grpc.Channel, op: pb.Operation, a: argparse.Namespace) -> pb.Operation:
    """The operation after following it live when `--wait` was given; else as it is."""
    if not getattr(a, "wait", False):
        return op
    updates: Iterator[ppb.OperationUpdate] = prpc.ProgressServiceStub(ch).WatchOperation(
        ppb.WatchOperationRequest(id=op.id, timeout_seconds=a.timeout)
    )
    view = ProgressView(sys.stderr, sys.stderr.isatty())
    return view.show(updates) or op


def all_pages(fetch: Callable[[str, int], tuple[list[Any], str]], limit: int) -> list[Any]:
    items: list[Any] = []
    token = ""
    while True:
        want = min(LIST_PAGE, limit - len(items)) if limit else LIST_PAGE
        page, token = fetch(token, want)
        items += page
        if not token or (limit and len(items) >= limit):
            return items


# ---- snapshots ----


def snapshot_create(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    op = prpc.SnapshotServiceStub(ch).CreateSnapshot(
        ppb.CreateSnapshotRequest(app_id=a.app, bucket=a.bucket, request_id=a.request_id)
    )
    return [watch(ch, op, a)]


def snapshot_list(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    def fetch(token: str, size: int) -> tuple[list[Any], str]:
        reply = prpc.SnapshotServiceStub(ch).ListSnapshots(
            ppb.ListSnapshotsRequest(
                app_id=a.app,
                cluster=a.cluster,
                namespace=a.namespace,
                page_size=size,
                page_token=token,
            )
        )
        return list(reply.snapshots), reply.next_page_token

    return all_pages(fetch, a.limit)


def snapshot_get(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    return [prpc.SnapshotServiceStub(ch).GetSnapshot(ppb.GetSnapshotRequest(id=a.id))]


def snapshot_delete(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    op = prpc.SnapshotServiceStub(ch).DeleteSnapshot(
        ppb.DeleteSnapshotRequest(id=a.id, request_id=a.request_id)
    )
    return [watch(ch, op, a)]


# ---- backups ----


def backup_create(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    op = rpc.BackupServiceStub(ch).CreateBackup(
        pb.CreateBackupRequest(
            app_id=a.app, bucket=a.bucket, snapshot_id=a.snapshot, request_id=a.request_id
        )
    )
    return [watch(ch, op, a)]


def backup_list(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    def fetch(token: str, size: int) -> tuple[list[Any], str]:
        reply = prpc.BackupCatalogServiceStub(ch).ListBackups(
            ppb.ListBackupsRequest(
                bucket=a.bucket,
                app_id=a.app,
                cluster=a.cluster,
                namespace=a.namespace,
                page_size=size,
                page_token=token,
            )
        )
        return list(reply.backups), reply.next_page_token

    return all_pages(fetch, a.limit)


def backup_get(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    stub = prpc.BackupCatalogServiceStub(ch)
    return [stub.GetBackup(ppb.GetBackupRequest(bucket=a.bucket, id=a.id))]


def backup_delete(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    op = prpc.BackupCatalogServiceStub(ch).DeleteBackup(
        ppb.DeleteBackupRequest(bucket=a.bucket, id=a.id, request_id=a.request_id)
    )
    return [watch(ch, op, a)]


# ---- restore ----


def restore_create(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    op = rpc.RestoreServiceStub(ch).CreateRestore(restore_request(a))
    return [watch(ch, op, a)]


# ---- verification ----


def verify_run(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    op = prpc.VerificationServiceStub(ch).CreateVerification(
        ppb.CreateVerificationRequest(
            app_id=a.app,
            bucket=a.bucket,
            backup_id=a.backup,
            target_cluster=a.to_cluster,
            request_id=a.request_id,
        )
    )
    return [watch(ch, op, a)]


def verify_create(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    """A schedule of kind verify: each run verifies the app's newest backup."""
    return schedule_create(ch, a)


def platform_recover(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    op = prpc.PlatformServiceStub(ch).RecoverPlatform(
        ppb.RecoverPlatformRequest(
            bucket=a.bucket, from_install=a.from_install, request_id=a.request_id
        )
    )
    return [watch(ch, op, a)]


# ---- schedules ----


def schedule_create(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    stub = prpc.ScheduleServiceStub(ch)
    return [
        stub.CreateSchedule(
            ppb.CreateScheduleRequest(schedule=schedule_message(a), request_id=a.request_id)
        )
    ]


def schedule_list(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    def fetch(token: str, size: int) -> tuple[list[Any], str]:
        reply = prpc.ScheduleServiceStub(ch).ListSchedules(
            ppb.ListSchedulesRequest(app_id=a.app, page_size=size, page_token=token)
        )
        return list(reply.schedules), reply.next_page_token

    schedules = all_pages(fetch, a.limit)
    if a.output == "table":  # JSON and YAML show the schedules exactly as the API has them
        a.related = last_runs(ch, schedules)
    return schedules


def last_runs(ch: grpc.Channel, schedules: list[ppb.Schedule]) -> dict[str, pb.Operation]:
    """Each schedule's newest run among its app's recent operations of its kind (a run is
    requested by `schedule/<id>`), by schedule id; one call per app and kind."""
    found: dict[str, pb.Operation] = {}
    stub = rpc.OperationServiceStub(ch)
    for app_id, kind in sorted({(s.app_id, s.kind) for s in schedules}):
        try:
            reply = stub.ListOperations(
                pb.ListOperationsRequest(app_id=app_id, kind=kind, page_size=LAST_RUN_WINDOW)
            )
        except grpc.RpcError:  # e.g. a token that may not read operations: no last run shown
            continue
        for op in reply.operations:  # newest first
            owner = op.requested_by.removeprefix("schedule/")
            if op.requested_by.startswith("schedule/") and owner not in found:
                found[owner] = op
    return found


def schedule_get(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    return [prpc.ScheduleServiceStub(ch).GetSchedule(ppb.GetScheduleRequest(id=a.id))]


def schedule_delete(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    return [prpc.ScheduleServiceStub(ch).DeleteSchedule(ppb.DeleteScheduleRequest(id=a.id))]


# ---- buckets ----


def bucket_list(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    return list(prpc.BucketServiceStub(ch).ListBuckets(ppb.ListBucketsRequest()).buckets)


def bucket_get(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    return [prpc.BucketServiceStub(ch).GetBucket(ppb.GetBucketRequest(name=a.name))]


def _secret_ref(text: str, key: str) -> ppb.SecretKeyRef:
    found = namespaced(text)
    if found is None:
        raise SystemExit(f"error: --secret {text!r} is not NAMESPACE/NAME")
    return ppb.SecretKeyRef(namespace=found[0], name=found[1], key=key)


def bucket_register(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    request = ppb.RegisterBucketRequest(
        name=a.name,
        endpoint=a.s3_endpoint,
        bucket=a.bucket,
        secure=a.secure,
        access_key=_secret_ref(a.secret, a.access_key_key),
        secret_key=_secret_ref(a.secret, a.secret_key_key),
        password=_secret_ref(a.secret, a.password_key),
        repository=a.repository,
        like=a.like,
        request_id=a.request_id,
    )
    return [prpc.BucketServiceStub(ch).RegisterBucket(request)]


def bucket_remove(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    """The bucket as it was registered (the removal itself answers nothing)."""
    stub = prpc.BucketServiceStub(ch)
    before = stub.GetBucket(ppb.GetBucketRequest(name=a.name))
    stub.RemoveBucket(ppb.RemoveBucketRequest(name=a.name, request_id=a.request_id))
    return [before]
