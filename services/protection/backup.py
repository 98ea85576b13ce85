"""Backup of an app: copy an app snapshot into the bucket, then write the catalog and
announce completion, in that order (a backup is complete only when its listing entry
`backup.json` is stored, after its sealed record).

A backup naming `snapshot_id` copies that app snapshot; one without first takes a fresh
snapshot inside its own operation (same steps as an app snapshot, its id the backup's).
Copying means the snapshot's resource archive, opened and sealed again as the backup's
(`backups/<id>/resources.sealed`), and,
per volume, a mover transfer from the snapshot's read-only data, never from the live
volume. When an earlier completed backup of the app in the same bucket came from a
snapshot Vessel still keeps, each volume's transfer names that backup's repository
snapshot and read-only data as its parent, so the mover visits only what changed.
"""

from __future__ import annotations

import logging
from pathlib import PurePath

from services.protection import catalog_head
from services.protection.bucket_catalog import (
    BackupCatalog,
    VolumeEntry,
    read_snapshot_resources,
    read_written_resources,
    write_catalog,
    write_resources,
)
from services.protection.context import ProtectionContext
from services.protection.hook_runs import run_stage
from services.protection.hooks import HookOutcome
from services.protection.snapshot import CannotSnapshot, SnapshotFlow
from services.protection.state.operations import running, settled
from vessel.contracts import subjects
from vessel.contracts.commands import CreateBackup, MoveToBucket
from vessel.contracts.events import AppRecord, BackupEvent, TransferResult
from vessel.contracts.group_snapshots import GroupSnapshotResult
from vessel.contracts.hooks import HookStage
from vessel.contracts.operations import Operation, Phase, VolumeWork, now
from vessel.contracts.protection import AppSnapshotRecord

log = logging.getLogger("vessel.protection.backup")
Parents = dict[tuple[str, str], tuple[str, str]]
"""(namespace, claim) → (parent repository snapshot, its read-only source path)."""


class BackupFlow:
    def __init__(self, p: ProtectionContext, snapshots: SnapshotFlow | None = None) -> None:
        self.p = p
        self.snapshots = snapshots or SnapshotFlow(p)

    async def on_command(self, cmd: CreateBackup) -> None:
        op = Operation(
            id=cmd.operation_id,
            kind="backup",
            app_id=cmd.app_id,
            bucket=cmd.bucket,
            backup_id=cmd.operation_id,
            snapshot_id=cmd.snapshot_id or cmd.operation_id,
            schedule=cmd.schedule or "",
            requested_by=cmd.requested_by,
        )
        if not await self.p.operations.create(op):
            existing = await self.p.operations.get(op.id)
            if existing is None or not running(existing) or existing.phase == Phase.IN_PROGRESS:
                return  # a repeated command: the first one owns the work
        pre = await self._hooks(op, "pre-backup")
        if pre.failed:
            failed = "; ".join(i.name for i in pre.items if i.state == "Failed")
            await self._fail(op, f"pre-backup hook failed: {failed}")
            return
        if cmd.snapshot_id:
            await self._from_existing(op, cmd.snapshot_id)
            return
        try:
            record = await self.snapshots.begin(op)
        except CannotSnapshot as exc:
            await self._fail(op, str(exc))
            return
        op = await self._started(op.id, record)
        if record.phase != "InProgress":  # an app without claims: nothing to wait for
            await self._after_snapshot(op, record)

    async def _from_existing(self, op: Operation, snapshot_id: str) -> None:
        record = await self.snapshots.get(snapshot_id)
        if record is None:
            await self._fail(op, f"app snapshot {snapshot_id} does not exist")
        elif record.app_id != op.app_id:
            await self._fail(op, f"app snapshot {snapshot_id} is of app {record.app_id}")
        elif record.phase != "Completed":
            await self._fail(
                op, f"app snapshot {snapshot_id} is {record.phase}: only a Completed one is copied"
            )
        else:
            await self._copy(await self._started(op.id, record), record)

    async def _started(self, op_id: str, record: AppSnapshotRecord) -> Operation:
        def start(o: Operation) -> None:
            o.phase, o.source_cluster = Phase.IN_PROGRESS, record.cluster

        op = await self.p.operations.change(op_id, start)
        await self.p.bus.publish(subjects.BACKUP_STARTED, self._event(op))
        return op

    async def on_group(self, result: GroupSnapshotResult) -> None:
        """The fresh snapshot of a backup was taken (or not): copy it."""
        record = await self.snapshots.on_group(result)
        op = await self.p.operations.get(result.operation_id)
        if record is None or op is None or not running(op):
            return
        await self._after_snapshot(op, record)

    async def _after_snapshot(self, op: Operation, record: AppSnapshotRecord) -> None:
        if record.phase != "Completed":
            failed = "; ".join(
                f"{i.namespace}/{i.name}: {i.message}" for i in op.items if i.state == "Failed"
            )
            await self._fail(op, f"app snapshot {record.id} {record.phase}: {failed}")
            return
        await self._copy(op, record)

    async def _copy(self, op: Operation, record: AppSnapshotRecord) -> None:
        objects = await self.p.in_bucket(
            record.bucket, lambda s: read_snapshot_resources(s, record.id, record.resources_key)
        )
        await self.p.in_bucket(op.bucket, lambda s: write_resources(s, op.id, objects))
        missing = [f"{v.namespace}/{v.claim}" for v in record.volumes if not v.path]
        if missing:
            await self._fail(op, f"app snapshot {record.id} has no data path for {missing}")
            return
        parents = await self._parents(op, record)
        work = [
            VolumeWork(
                claim=v.claim,
                namespace=v.namespace,
                transfer_id=f"{op.id}-{v.claim}",
                state="Moving",
                parent_snapshot=parents.get((v.namespace, v.claim), ("", ""))[0],
            )
            for v in record.volumes
        ]

        def moving(o: Operation) -> None:
            o.volumes = work

        op = await self.p.operations.change(op.id, moving)
        for w, v in zip(work, record.volumes, strict=True):
            parent, parent_path = parents.get((v.namespace, v.claim), (None, None))
            await self.p.bus.publish(
                subjects.MOVE_TO_BUCKET,
                MoveToBucket(
                    transfer_id=w.transfer_id,
                    operation_id=op.id,
                    cluster=record.cluster,
                    bucket=op.bucket,
                    source_path=v.path,
                    parent_snapshot=parent,
                    parent_source_path=parent_path,
                    tags={
                        "backup": op.id,
                        "app_snapshot": record.id,
                        "namespace": w.namespace,
                        "claim": w.claim,
                    },
                ),
                cluster=record.cluster,
            )
        if not work:
            await self._complete(op, record)

    async def _parents(self, op: Operation, record: AppSnapshotRecord) -> Parents:
        """Per volume, the newest earlier backup of the app in this bucket whose snapshot
        Vessel still keeps, if its data is an earlier snapshot of the same volume."""
        earlier: list[Operation] = []
        for key in await self.p.operations.kv.keys():
            other = await self.p.operations.get(key) if key != op.id else None
            if (
                other is not None
                and other.kind == "backup"
                and other.phase == Phase.COMPLETED
                and other.app_id == op.app_id
                and other.bucket == op.bucket
                and other.snapshot_id
                and other.created < op.created
            ):
                earlier.append(other)
        for other in sorted(earlier, key=lambda o: o.created, reverse=True):
            kept = await self.snapshots.get(other.snapshot_id)
            if kept is None or kept.phase != "Completed":
                continue
            paths = {(v.namespace, v.claim): v.path for v in kept.volumes}
            parents: Parents = {}
            for v in record.volumes:
                old_path = paths.get((v.namespace, v.claim), "")
                done = [
                    w for w in other.volumes if (w.namespace, w.claim) == (v.namespace, v.claim)
                ]
                # Snapshots live at <root>/.snapshots/<volume id>/<snapshot id>: the same
                # parent directory means an earlier snapshot of the same volume.
                same_volume = old_path and PurePath(old_path).parent == PurePath(v.path).parent
                if done and done[0].snapshot_id and same_volume:
                    parents[(v.namespace, v.claim)] = (done[0].snapshot_id, old_path)
            return parents
        return {}

    async def on_transfer(self, result: TransferResult) -> None:
        op = await self.p.operations.record_transfer(result)
        if not settled(op):  # transfers still running, or the backup ended or canceled
            return
        if op.volume_errors():
            await self._fail(op, op.volume_errors())
            return
        record = await self.snapshots.get(op.snapshot_id)
        if record is None:
            await self._fail(op, f"app snapshot {op.snapshot_id} disappeared during the backup")
            return
        await self._complete(op, record)

    async def _complete(self, op: Operation, record: AppSnapshotRecord) -> None:
        objects, resources_digest = await self.p.in_bucket(
            op.bucket, lambda s: read_written_resources(s, op.id)
        )
        namespaces = {str((o.get("metadata") or {}).get("namespace") or "") for o in objects}
        namespaces |= {record.namespace} | {w.namespace for w in op.volumes}
        backup = BackupCatalog(
            backup_id=op.id,
            app_id=op.app_id,
            cluster=record.cluster,
            namespace=record.namespace,
            created=op.created,
            completed=now(),
            resources_digest=resources_digest,
            volumes=[
                VolumeEntry(
                    namespace=w.namespace, claim=w.claim, snapshot_id=w.snapshot_id, bytes=w.bytes
                )
                for w in op.volumes
            ],
            snapshot_id=record.id,
            namespaces=sorted(namespaces - {""}),
        )
        # In the head before the listing entry makes the backup complete (catalog_head.py).
        await catalog_head.change(self.p, op.bucket, add=op.id)
        await self.p.in_bucket(op.bucket, lambda s: write_catalog(s, backup))
        post = await self._hooks(op, "post-backup")

        def finish(o: Operation) -> None:
            o.phase = Phase.COMPLETED
            o.message = f"{len(o.volumes)} volumes, {backup_bytes(o)} bytes"
            if post.failed:  # the data is whole; the app may not have resumed
                o.phase, o.message = Phase.PARTIALLY_FAILED, o.message + "; post-backup hook failed"

        op = await self.p.operations.change(op.id, finish)
        log.info("backup %s of %s completed", op.id, op.app_id)
        await self.p.bus.publish(subjects.BACKUP_COMPLETED, self._event(op))

    async def _hooks(self, op: Operation, stage: HookStage) -> HookOutcome:
        entry = await self.p.inventory.get(f"apps.{op.app_id}")
        if entry is None:  # an app gone has no containers to run hooks in
            return HookOutcome()
        return await run_stage(self.p, op.id, AppRecord.model_validate_json(entry.value), stage)

    async def _fail(self, op: Operation, message: str) -> None:
        def fail(o: Operation) -> None:
            o.phase, o.message = Phase.FAILED, message

        op = await self.p.operations.change(op.id, fail)
        if op.snapshot_id == op.id:  # its own snapshot ends with it
            await self.snapshots.abandon(op.snapshot_id)
        log.warning("backup %s failed: %s", op.id, message)
        await self.p.bus.publish(subjects.BACKUP_FAILED, self._event(op))

    @staticmethod
    def _event(op: Operation) -> BackupEvent:
        return BackupEvent(
            backup_id=op.id,
            operation_id=op.id,
            app_id=op.app_id,
            bucket=op.bucket,
            volumes=len(op.volumes),
            bytes=backup_bytes(op),
            message=op.message,
        )


def backup_bytes(op: Operation) -> int:
    return sum(w.bytes for w in op.volumes)
