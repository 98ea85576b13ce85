"""Backup of an app: capture resources, have the mover copy each volume, then write the
catalog and announce completion, in that order (a backup is complete only when
`backup.json` is stored)."""

from __future__ import annotations

import logging

from services.protection.bucket_catalog import (
    BackupCatalog,
    VolumeEntry,
    prefix,
    write_catalog,
    write_resources,
)
from services.protection.context import Protection
from services.protection.resources import sanitize
from vessel.contracts import catalog
from vessel.contracts.commands import CreateBackup, MoveToBucket
from vessel.contracts.events import AppRecord, BackupEvent, TransferResult
from vessel.contracts.operations import Operation, VolumeWork, now

log = logging.getLogger("vessel.protection.backup")


class BackupFlow:
    def __init__(self, p: Protection) -> None:
        self.p = p

    async def on_command(self, cmd: CreateBackup) -> None:
        op = Operation(
            id=cmd.operation_id,
            kind="backup",
            app_id=cmd.app_id,
            bucket=cmd.bucket,
            backup_id=cmd.operation_id,
            requested_by=cmd.requested_by,
        )
        if not await self.p.operations.create(op):
            existing = await self.p.operations.get(op.id)
            if existing is None or existing.done or existing.phase == "InProgress":
                return  # a repeated command: the first one owns the work
        entry = await self.p.inventory.get(f"apps.{cmd.app_id}")
        if entry is None:
            await self._fail(op, f"app {cmd.app_id} is not in the inventory")
            return
        app = AppRecord.model_validate_json(entry.value)
        kube = self.p.cluster(app.cluster)
        objects = []
        for ref in app.resources:
            obj = await kube.get(ref.api_version, ref.kind, ref.name, ref.namespace)
            if obj is not None:
                objects.append(sanitize(obj))
        await self.p.in_bucket(cmd.bucket, lambda s: write_resources(s, op.id, objects))
        work: list[tuple[VolumeWork, str]] = []
        for claim in app.claims:
            if not claim.volume_name:
                continue
            pv = await kube.get("v1", "PersistentVolume", claim.volume_name)
            path = ((pv or {}).get("spec", {}).get("hostPath") or {}).get("path")
            if path is None:
                await self._fail(
                    op, f"claim {claim.name}: volume {claim.volume_name} has no local path"
                )
                return
            work.append(
                (
                    VolumeWork(
                        claim=claim.name,
                        namespace=app.namespace,
                        transfer_id=f"{op.id}-{claim.name}",
                        state="Moving",
                    ),
                    path,
                )
            )

        def start(o: Operation) -> None:
            o.phase, o.source_cluster = "InProgress", app.cluster
            o.volumes = [w for w, _ in work]

        op = await self.p.operations.change(op.id, start)
        await self.p.bus.publish(catalog.BACKUP_STARTED, self._event(op))
        for w, path in work:
            await self.p.bus.publish(
                catalog.MOVE_TO_BUCKET,
                MoveToBucket(
                    transfer_id=w.transfer_id,
                    operation_id=op.id,
                    cluster=app.cluster,
                    bucket=op.bucket,
                    source_path=path,
                    tags={"backup": op.id, "namespace": w.namespace, "claim": w.claim},
                ),
                cluster=app.cluster,
            )
        if not work:
            await self._complete(op, app)

    async def on_transfer(self, result: TransferResult) -> None:
        op = await self.p.operations.record_transfer(result)
        if not op.settled:
            return
        if op.volume_errors():
            await self._fail(op, op.volume_errors())
            return
        entry = await self.p.inventory.get(f"apps.{op.app_id}")
        if entry is None:
            await self._fail(op, f"app {op.app_id} disappeared during the backup")
            return
        await self._complete(op, AppRecord.model_validate_json(entry.value))

    async def _complete(self, op: Operation, app: AppRecord) -> None:
        backup = BackupCatalog(
            backup_id=op.id,
            app_id=op.app_id,
            cluster=app.cluster,
            namespace=app.namespace,
            created=op.created,
            completed=now(),
            resources_key=f"{prefix(op.id)}/resources.json",
            volumes=[
                VolumeEntry(
                    namespace=w.namespace, claim=w.claim, snapshot_id=w.snapshot_id, bytes=w.bytes
                )
                for w in op.volumes
            ],
        )
        await self.p.in_bucket(op.bucket, lambda s: write_catalog(s, backup))

        def finish(o: Operation) -> None:
            o.phase, o.message = "Completed", f"{len(o.volumes)} volumes, {backup_bytes(o)} bytes"

        op = await self.p.operations.change(op.id, finish)
        log.info("backup %s of %s completed", op.id, op.app_id)
        await self.p.bus.publish(catalog.BACKUP_COMPLETED, self._event(op))

    async def _fail(self, op: Operation, message: str) -> None:
        def fail(o: Operation) -> None:
            o.phase, o.message = "Failed", message

        op = await self.p.operations.change(op.id, fail)
        log.warning("backup %s failed: %s", op.id, message)
        await self.p.bus.publish(catalog.BACKUP_FAILED, self._event(op))

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
