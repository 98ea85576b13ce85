"""Deleting backups and app snapshots, each as an operation ("delete-backup",
"delete-snapshot"); both idempotent: deleting what is already gone succeeds.

A backup goes in the order that never shows a half-deleted backup as complete:
`backup.json` first (the backup stops being listed and restorable), then its sealed
record, resource archive and anything else under its prefix, then its volumes' repository
snapshots, which the mover of the backup's cluster forgets and prunes
(`mover.<cluster>.forget`); the operation completes on the mover's
`mover.snapshots.forgotten` and `protection.backup.deleted` follows.

An app snapshot goes VolumeSnapshots first (the provisioner frees their data), then its
resource archive, then its record in KV `app_snapshots`, so a retry after a crash still
finds the record that says what is left.

Under object lock a backup is deleted only once none of its documents is locked any more:
before that the operation fails naming the date, and nothing of the backup is touched.
Documents are deleted with all their versions (a plain delete frees nothing there).
"""

from __future__ import annotations

import logging
from datetime import datetime

from services.protection import catalog_head
from services.protection.bucket_catalog import (
    Backup,
    CatalogError,
    UnsealedBackup,
    read_catalog,
    read_legacy,
)
from services.protection.context import ProtectionContext
from services.protection.state.operations import running
from services.protection.state.snapshots import AppSnapshotStore
from vessel.bus.errors import PermanentError, TemporaryError
from vessel.contracts import subjects
from vessel.contracts.commands import ForgetSnapshots
from vessel.contracts.events import AppSnapshotEvent, BackupEvent, SnapshotsForgotten
from vessel.contracts.operations import Operation, Phase
from vessel.contracts.protection import DeleteAppSnapshot, DeleteBackup
from vessel.contracts.state import (
    BACKUP_LISTING,
    BACKUP_RECORD,
    RESOURCES,
    backup_key,
    backup_prefix,
)
from vessel.objectstore.base import ObjectNotFound, ObjectStore
from vessel.objectstore.lock import locked_until, purge
from vessel.sealed.documents import SealedStore

log = logging.getLogger("vessel.protection.deletion")
SNAPSHOT_API = "snapshot.storage.k8s.io/v1"


def read_catalog_if_any(sb: SealedStore, backup_id: str) -> Backup | None:
    try:
        return read_catalog(sb, backup_id)
    except ObjectNotFound:
        return None
    except UnsealedBackup:
        return _legacy_if_readable(sb, backup_id)
    except CatalogError as exc:  # unverifiable: the operation record says what to forget
        log.warning("%s", exc)
        return None


def _legacy_if_readable(sb: SealedStore, backup_id: str) -> Backup | None:
    try:
        return read_legacy(sb.store, backup_id)[0]
    except (ObjectNotFound, CatalogError) as exc:
        log.warning("backup %s: %s", backup_id, exc)
        return None


class BackupLocked(Exception):
    """A backup's documents are under object lock: it cannot be deleted yet."""


def _locked_until(store: ObjectStore, keys: list[str]) -> datetime | None:
    dates = []
    for key in keys:
        try:
            until = locked_until(store, key)
        except ObjectNotFound:
            continue
        if until is not None:
            dates.append(until)
    return max(dates, default=None)


def delete_backup_objects(sb: SealedStore, backup_id: str) -> None:
    """The listing entry first (the backup stops being listed and restorable), the sealed
    record and resource archive next, then whatever else is left. Raises `BackupLocked`,
    deleting nothing, while any of them is locked."""
    keys = [backup_key(backup_id, name) for name in (BACKUP_LISTING, BACKUP_RECORD, RESOURCES)]
    keys += [key for key in sb.store.list(f"{backup_prefix(backup_id)}/") if key not in keys]
    until = _locked_until(sb.store, keys)
    if until is not None:
        raise BackupLocked(
            f"backup {backup_id} is locked (object lock) until {until.isoformat()}: it can "
            "be deleted after that date; nothing was deleted"
        )
    for key in keys:
        purge(sb.store, key)


class DeletionFlow:
    def __init__(self, p: ProtectionContext, app_snapshots: AppSnapshotStore) -> None:
        self.p = p
        self.app_snapshots = app_snapshots

    async def _begin(self, op: Operation) -> Operation | None:
        """The operation to carry on with, or None when it already ended."""
        if await self.p.operations.create(op):
            return op
        existing = await self.p.operations.get(op.id)
        if existing is None or existing.kind != op.kind:
            kind = existing.kind if existing else "vanished"
            raise PermanentError(f"operation_id {op.id} is already used by a {kind} operation")
        # Redelivered: repeat the idempotent steps, unless it ended or is being canceled.
        return existing if running(existing) else None

    async def _finish(self, op_id: str, phase: Phase, message: str) -> Operation:
        def end(o: Operation) -> None:
            o.phase, o.message = phase, message

        return await self.p.operations.change(op_id, end)

    async def on_delete_backup(self, cmd: DeleteBackup) -> None:
        op = await self._begin(
            Operation(
                id=cmd.operation_id,
                kind="delete-backup",
                backup_id=cmd.backup_id,
                bucket=cmd.bucket,
                requested_by=cmd.requested_by,
            )
        )
        if op is None:
            return
        found = await self.p.in_bucket(cmd.bucket, lambda s: read_catalog_if_any(s, cmd.backup_id))
        backup_op = await self.p.operations.get(cmd.backup_id)
        snapshot_ids = sorted(
            {v.snapshot_id for v in found.volumes}
            if found is not None
            else {w.snapshot_id for w in (backup_op.volumes if backup_op else []) if w.snapshot_id}
        )
        cluster = (found.cluster if found else "") or (
            backup_op.source_cluster if backup_op else ""
        )
        app_id = (found.app_id if found else "") or (backup_op.app_id if backup_op else "")
        try:
            await self.p.in_bucket(cmd.bucket, lambda s: delete_backup_objects(s, cmd.backup_id))
        except BackupLocked as exc:
            op = await self._finish(op.id, Phase.FAILED, str(exc))
            log.warning("deleting backup %s refused: %s", op.backup_id, op.message)
            return
        await catalog_head.change(self.p, cmd.bucket, remove=cmd.backup_id)
        if not snapshot_ids:
            await self._backup_deleted(op.id, app_id, 0)
            return
        registered = await self.p.clusters.ids()
        if cluster not in registered:
            # Any cluster's mover reaches the bucket; prefer the one that wrote the data.
            cluster = min(registered, default="")
        if not cluster:
            raise TemporaryError("no cluster is registered whose mover could forget", delay=30)

        def forgetting(o: Operation) -> None:
            o.phase, o.app_id, o.source_cluster = Phase.IN_PROGRESS, app_id, cluster
            o.message = f"catalog deleted; forgetting {len(snapshot_ids)} repository snapshots"

        await self.p.operations.change(op.id, forgetting)
        await self.p.bus.publish(
            subjects.FORGET_SNAPSHOTS,
            ForgetSnapshots(
                operation_id=op.id,
                cluster=cluster,
                bucket=cmd.bucket,
                snapshot_ids=snapshot_ids,
                prune=True,
            ),
            cluster=cluster,
        )

    async def on_forgotten(self, event: SnapshotsForgotten) -> None:
        op = await self.p.operations.get(event.operation_id)
        if op is None or op.kind != "delete-backup" or not running(op):
            return
        if event.error:
            op = await self._finish(op.id, Phase.FAILED, f"repository snapshots: {event.error}")
            log.warning("deleting backup %s failed: %s", op.backup_id, op.message)
            return
        await self._backup_deleted(op.id, op.app_id, len(event.snapshot_ids))

    async def _backup_deleted(self, op_id: str, app_id: str, volumes: int) -> None:
        op = await self._finish(op_id, Phase.COMPLETED, f"{volumes} repository snapshots forgotten")
        log.info("backup %s deleted from %s", op.backup_id, op.bucket)
        await self.p.bus.publish(
            subjects.BACKUP_DELETED,
            BackupEvent(
                backup_id=op.backup_id,
                operation_id=op.id,
                app_id=app_id,
                bucket=op.bucket,
                volumes=volumes,
                message=op.message,
            ),
        )

    async def on_delete_snapshot(self, cmd: DeleteAppSnapshot) -> None:
        op = await self._begin(
            Operation(
                id=cmd.operation_id,
                kind="delete-snapshot",
                snapshot_id=cmd.snapshot_id,
                requested_by=cmd.requested_by,
            )
        )
        if op is None:
            return
        record = await self.app_snapshots.get(cmd.snapshot_id)
        if record is not None:
            if record.phase == "InProgress":
                raise TemporaryError(f"app snapshot {record.id} is still being taken", delay=10)
            key = record.resources_key
            until = await self.p.in_bucket(record.bucket, lambda s: _locked_until(s.store, [key]))
            if until is not None:
                message = (
                    f"app snapshot {record.id} is locked (object lock) until "
                    f"{until.isoformat()}: it can be deleted after that date"
                )
                await self._finish(op.id, Phase.FAILED, message)
                return
            kube = await self.p.cluster(record.cluster)
            for volume in record.volumes:
                await kube.delete(
                    SNAPSHOT_API, "VolumeSnapshot", volume.volume_snapshot, volume.namespace
                )
            await self.p.in_bucket(record.bucket, lambda s: purge(s.store, record.resources_key))
            await self.app_snapshots.delete(record.id)
        message = f"{len(record.volumes)} VolumeSnapshots deleted" if record else "already deleted"
        op = await self._finish(op.id, Phase.COMPLETED, message)
        await self.p.bus.publish(
            subjects.APP_SNAPSHOT_DELETED,
            AppSnapshotEvent(
                snapshot_id=cmd.snapshot_id,
                operation_id=op.id,
                app_id=record.app_id if record else "",
                volumes=len(record.volumes) if record else 0,
                message=message,
            ),
        )
