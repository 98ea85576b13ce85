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
from vessel.cli.output import COLUMNS
from vessel.cli.progress import ProgressView
from vessel.cli.protection_requests import (
    parse_at,
    restore_flags,
    restore_request,
    schedule_message,
)

COLUMNS.update(
    {
        "Snapshot": ["id", "app_id", "phase", "bucket", "schedule", "created", "volumes"],
        "Backup": ["id", "app_id", "cluster", "namespaces", "completed", "bytes", "error"],
        "Schedule": [
            "id", "app_id", "kind", "bucket", "frequency", "cron", "hour", "minute",
            "retention.hourly", "retention.daily", "retention.weekly", "retention.monthly",
            "retention.yearly", "retention.floor", "paused",
        ],
        "Bucket": ["name", "endpoint", "bucket", "repository", "secure"],
    }
)  # fmt: skip
LIST_PAGE = 500
Parsers = Any
"""The `add_subparsers` object of the `vessel` parser."""


def watch(ch: grpc.Channel, op: pb.Operation, a: argparse.Namespace) -> pb.Operation:
    """The operation after following it live when `--wait` was given; else as it is."""
    if not getattr(a, "wait", False):
        return op
    updates: Iterator[ppb.OperationUpdate] = prpc.ProgressServiceStub(ch).WatchOperation(
        ppb.WatchOperationRequest(id=op.id, timeout_seconds=a.timeout)
    )
    view = ProgressView(sys.stderr, sys.stderr.isatty())
    return view.show(updates) or op


def _all_pages(fetch: Callable[[str, int], tuple[list[Any], str]], limit: int) -> list[Any]:
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

    return _all_pages(fetch, a.limit)


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

    return _all_pages(fetch, a.limit)


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

    return _all_pages(fetch, a.limit)


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
    namespace, sep, name = text.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise SystemExit(f"error: --secret {text!r} is not NAMESPACE/NAME")
    return ppb.SecretKeyRef(namespace=namespace, name=name, key=key)


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


# ---- the verbs ----


def _long_running(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--request-id", default="", help="idempotency key: a retry returns the same")
    p.add_argument("--wait", action="store_true", help=f"follow the {what} live until it ends")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds to follow (--wait)")


def _listing(p: argparse.ArgumentParser, *filters: str) -> None:
    for name in filters:
        p.add_argument(f"--{name}", default="", help=f"only this {name}")
    p.add_argument("--limit", type=int, default=0, help="at most this many (0: all)")


def _verbs(resources: Parsers, name: str, help_text: str) -> Any:
    return resources.add_parser(name, help=help_text).add_subparsers(dest="verb", required=True)


def add_parsers(resources: Parsers) -> None:
    snapshot = _verbs(resources, "snapshot", "app snapshots (resources + volume snapshots)")
    p = snapshot.add_parser("create", help="snapshot an app")
    p.add_argument("app", help="app id <cluster>.<namespace>.<name>")
    p.add_argument("--bucket", required=True, help="where the resource archive is kept")
    _long_running(p, "snapshot")
    p.set_defaults(run=snapshot_create)
    p = snapshot.add_parser("list")
    _listing(p, "app", "cluster", "namespace")
    p.set_defaults(run=snapshot_list)
    p = snapshot.add_parser("get")
    p.add_argument("id")
    p.set_defaults(run=snapshot_get)
    p = snapshot.add_parser("delete", help="delete a snapshot and its VolumeSnapshots")
    p.add_argument("id")
    _long_running(p, "deletion")
    p.set_defaults(run=snapshot_delete)

    backup = _verbs(resources, "backup", "app backups in a bucket")
    p = backup.add_parser("create", help="back up an app (or one of its snapshots)")
    p.add_argument("app", help="app id <cluster>.<namespace>.<name>")
    p.add_argument("--bucket", required=True)
    p.add_argument("--snapshot", default="", help="copy this existing snapshot")
    _long_running(p, "backup")
    p.set_defaults(run=backup_create)
    p = backup.add_parser("list", help="every backup the bucket's catalog holds")
    p.add_argument("--bucket", required=True)
    _listing(p, "app", "cluster", "namespace")
    p.set_defaults(run=backup_list)
    p = backup.add_parser("get")
    p.add_argument("id")
    p.add_argument("--bucket", required=True)
    p.set_defaults(run=backup_get)
    p = backup.add_parser("delete", help="delete a backup from its bucket")
    p.add_argument("id")
    p.add_argument("--bucket", required=True)
    _long_running(p, "deletion")
    p.set_defaults(run=backup_delete)

    p = resources.add_parser("restore", help="restore a backup (`restore create` also works)")
    p.add_argument("backup", nargs="+", metavar="BACKUP", help="backup id (or: create BACKUP)")
    p.add_argument("--bucket", required=True)
    p.add_argument("--to-cluster", required=True)
    restore_flags(p)
    p.add_argument("--in-place", action="store_true", help="replace the app where it runs")
    p.add_argument("--yes", action="store_true", help="confirm --in-place without asking")
    _long_running(p, "restore")
    p.set_defaults(run=restore_create)

    schedule = _verbs(resources, "schedule", "protection schedules with GFS retention")
    p = schedule.add_parser("create")
    p.add_argument("app", help="app id <cluster>.<namespace>.<name>")
    p.add_argument("--kind", choices=["snapshot", "backup"], default="backup")
    p.add_argument("--bucket", required=True)
    p.add_argument("--id", default="", help="schedule id (default: chosen by Vessel)")
    when = p.add_mutually_exclusive_group()
    for frequency in ("hourly", "daily", "weekly", "monthly"):
        when.add_argument(f"--{frequency}", dest="frequency", action="store_const", const=frequency)
    when.add_argument("--cron", help="5-field cron expression, UTC")
    p.add_argument("--at", type=parse_at, help="HH:MM UTC (hourly: :MM)")
    p.add_argument("--day", default="", help="weekly: sun..sat; monthly: 1..28")
    for tier in ("hourly", "daily", "weekly", "monthly", "yearly"):
        p.add_argument(f"--keep-{tier}", type=int, default=0, metavar="N")
    p.add_argument("--floor", type=int, help="never delete the newest N good runs (default 1)")
    p.add_argument("--paused", action="store_true")
    p.add_argument("--request-id", default="")
    p.set_defaults(run=schedule_create)
    p = schedule.add_parser("list")
    _listing(p, "app")
    p.set_defaults(run=schedule_list)
    p = schedule.add_parser("get")
    p.add_argument("id")
    p.set_defaults(run=schedule_get)
    p = schedule.add_parser("delete")
    p.add_argument("id")
    p.set_defaults(run=schedule_delete)

    bucket = _verbs(resources, "bucket", "backup buckets (configured or registered)")
    bucket.add_parser("list").set_defaults(run=bucket_list)
    p = bucket.add_parser("get")
    p.add_argument("name")
    p.set_defaults(run=bucket_get)
    p = bucket.add_parser("register", help="register (or re-point) a bucket at run time")
    p.add_argument("name")
    # Not `endpoint`: that destination is the gateway's (the connection flag).
    p.add_argument("--endpoint", dest="s3_endpoint", required=True, metavar="HOST:PORT")
    p.add_argument("--bucket", required=True, help="the bucket's name in the object store")
    p.add_argument("--secret", required=True, metavar="NS/NAME", help="Secret with the keys")
    p.add_argument("--access-key-key", default="access_key", metavar="KEY")
    p.add_argument("--secret-key-key", default="secret_key", metavar="KEY")
    p.add_argument("--password-key", default="password", metavar="KEY", help="repository's")
    p.add_argument("--secure", action="store_true", help="reach the endpoint over TLS")
    p.add_argument("--repository", default="", help="path in the bucket (default repository)")
    p.add_argument("--like", default="", help="create the repository like this bucket's")
    p.add_argument("--request-id", default="")
    p.set_defaults(run=bucket_register)
    p = bucket.add_parser("remove", help="forget a registered bucket (its objects stay)")
    p.add_argument("name")
    p.add_argument("--request-id", default="")
    p.set_defaults(run=bucket_remove)
