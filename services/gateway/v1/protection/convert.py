"""Conversions between protection contract models and the messages of protection.proto."""

from __future__ import annotations

from services.gateway.reads.catalog_reader import CatalogEntry
from services.gateway.v1.common import timestamp
from vessel.api.v1 import protection_pb2 as ppb
from vessel.contracts.events import TransferProgress
from vessel.contracts.files import FileEntry
from vessel.contracts.operations import Operation
from vessel.contracts.protection import AppSnapshotRecord, ScheduleSpec
from vessel.contracts.verification import VerificationRecord


def snapshot_message(record: AppSnapshotRecord) -> ppb.Snapshot:
    return ppb.Snapshot(
        id=record.id,
        app_id=record.app_id,
        cluster=record.cluster,
        namespace=record.namespace,
        bucket=record.bucket,
        phase=record.phase,
        schedule=record.schedule or "",
        created=timestamp(record.created),
        completed=timestamp(record.completed),
        volumes=[
            ppb.SnapshotVolume(
                namespace=v.namespace,
                claim=v.claim,
                volume_snapshot=v.volume_snapshot,
                bytes=v.bytes,
            )
            for v in record.volumes
        ],
    )


def verification_message(record: VerificationRecord) -> ppb.Verification:
    return ppb.Verification(
        outcome=record.outcome,
        verified_at=timestamp(record.verified_at),
        operation_id=record.operation_id,
        duration_seconds=record.duration_seconds,
        target_cluster=record.target_cluster,
        files=record.files,
        bytes=record.bytes,
        resources=record.resources,
        hooks=record.hooks,
        message=record.message,
    )


def backup_message(
    bucket: str, entry: CatalogEntry, verified: VerificationRecord | None = None
) -> ppb.Backup:
    view = entry.view
    if view is None:
        return ppb.Backup(id=entry.backup_id, bucket=bucket, error=entry.error)
    return ppb.Backup(
        verification=verification_message(verified) if verified else None,
        id=entry.backup_id,
        bucket=bucket,
        app_id=view.app_id,
        cluster=view.cluster,
        namespaces=entry.namespaces,
        created=timestamp(view.created),
        completed=timestamp(view.completed),
        bytes=sum(v.bytes for v in view.volumes),
        format=view.format,
        volumes=[
            ppb.BackupVolume(
                namespace=v.namespace, claim=v.claim, snapshot_id=v.snapshot_id, bytes=v.bytes
            )
            for v in view.volumes
        ],
    )


def schedule_message(spec: ScheduleSpec) -> ppb.Schedule:
    r = spec.retention
    return ppb.Schedule(
        id=spec.id,
        app_id=spec.app_id,
        kind=spec.kind,
        bucket=spec.bucket,
        frequency=spec.frequency,
        cron=spec.cron,
        minute=spec.minute,
        hour=spec.hour,
        day_of_week=spec.day_of_week,
        day_of_month=spec.day_of_month,
        paused=not spec.enabled,
        target_cluster=spec.target_cluster or "",
        retention=ppb.Retention(
            hourly=r.hourly,
            daily=r.daily,
            weekly=r.weekly,
            monthly=r.monthly,
            yearly=r.yearly,
            floor=r.floor,
            floor_verified=r.floor_verified,
        ),
    )


def schedule_fields(message: ppb.Schedule) -> dict[str, object]:
    """The request's schedule as contract fields, for validation by `ScheduleSpec`."""
    r = message.retention
    retention: dict[str, int] = {
        "hourly": r.hourly,
        "daily": r.daily,
        "weekly": r.weekly,
        "monthly": r.monthly,
        "yearly": r.yearly,
        "floor_verified": r.floor_verified,
    }
    if r.HasField("floor"):
        retention["floor"] = r.floor
    return {
        "id": message.id,
        "app_id": message.app_id,
        "kind": message.kind,
        "bucket": message.bucket,
        "frequency": message.frequency,
        "cron": message.cron,
        "minute": message.minute,
        "hour": message.hour,
        "day_of_week": message.day_of_week,
        "day_of_month": message.day_of_month or 1,
        "retention": retention,
        "enabled": not message.paused,
        "target_cluster": message.target_cluster or None,
    }


def progress_message(event: TransferProgress, op: Operation) -> ppb.TransferProgress:
    volume = next((w for w in op.volumes if w.transfer_id == event.transfer_id), None)
    return ppb.TransferProgress(
        operation_id=event.operation_id,
        transfer_id=event.transfer_id,
        namespace=volume.namespace if volume else "",
        claim=volume.claim if volume else "",
        direction=event.direction,
        files=event.files,
        bytes=event.bytes,
        bytes_per_second=event.bytes_per_second,
        total_bytes=event.total_bytes,
        total_files=event.total_files,
        eta_seconds=event.eta_seconds,
    )


def file_entry_message(entry: FileEntry) -> ppb.FileEntry:
    message = ppb.FileEntry(
        path=entry.path,
        type=entry.type,
        size=entry.size,
        mode=entry.mode,
        uid=entry.uid,
        gid=entry.gid,
        target=entry.target,
    )
    message.mtime.FromNanoseconds(entry.mtime_ns)
    return message
