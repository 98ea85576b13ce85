"""File-level access to backups: which verified repository snapshot holds a volume (for
the gateway's browse and download, `vessel.query.protection.files`), and restores of
chosen paths into an existing claim (`protection.files.restore`).

Both verify the backup as a restore does (sealed record, listing agreement, catalog head)
before naming a snapshot, so a modified listing cannot lead a scoped caller to another
namespace's data. Backups written before sealing are refused: nothing proves which
snapshot is theirs. A file restore writes into the claim's bound volume through the
mover of the claim's cluster; the claim must exist and be bound (a restore of paths never
creates claims).
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from services.protection import catalog_head
from services.protection.bucket_catalog import (
    BackupCatalog,
    CatalogError,
    VolumeEntry,
    read_catalog,
)
from services.protection.context import ProtectionContext
from services.protection.state.operations import CANCELED, settled
from vessel.bus.errors import PermanentError
from vessel.contracts import state, subjects
from vessel.contracts.commands import MoveFromBucket
from vessel.contracts.events import QueryFailed, TransferResult
from vessel.contracts.files import (
    BackupVolumeFound,
    BackupVolumeLookup,
    FilesRestoreEvent,
    RestoreFiles,
)
from vessel.contracts.infra_queries import StoredVolume
from vessel.contracts.operations import Operation, Phase, VolumeWork
from vessel.kube.objects import ClaimView
from vessel.objectstore.base import ObjectNotFound

log = logging.getLogger("vessel.protection.files")


async def backed_up_volume(
    p: ProtectionContext, bucket: str, backup_id: str, namespace: str, claim: str
) -> tuple[BackupCatalog, VolumeEntry]:
    """The backup's verified record and the entry of its volume `namespace/claim`."""
    try:
        catalog = await p.in_bucket(bucket, lambda s: read_catalog(s, backup_id))
    except ObjectNotFound:
        missing = f"backup {backup_id} is not in bucket {bucket} (or is incomplete)"
        raise CatalogError(missing) from None
    await catalog_head.verify(p, bucket, backup_id)
    for volume in catalog.volumes:
        if (volume.namespace, volume.claim) == (namespace, claim):
            return catalog, volume
    held = ", ".join(f"{v.namespace}/{v.claim}" for v in catalog.volumes) or "none"
    raise CatalogError(
        f"backup {backup_id} holds no volume of {namespace}/{claim} (it holds {held})"
    )


async def answer_lookup(p: ProtectionContext, subject: str, body: bytes) -> bytes:
    reply: BackupVolumeFound | QueryFailed
    try:
        ask = BackupVolumeLookup.model_validate_json(body)
    except ValidationError as exc:
        return QueryFailed.invalid(subject, exc).model_dump_json().encode()
    try:
        catalog, volume = await backed_up_volume(
            p, ask.bucket, ask.backup_id, ask.namespace, ask.claim
        )
        reply = BackupVolumeFound(
            cluster=catalog.cluster, snapshot_id=volume.snapshot_id, bytes=volume.bytes
        )
    except (CatalogError, PermanentError) as exc:
        reply = QueryFailed(error=str(exc))
    return reply.model_dump_json().encode()


class FileRestoreFlow:
    def __init__(self, p: ProtectionContext) -> None:
        self.p = p

    async def on_lookup(self, subject: str, body: bytes) -> bytes:
        return await answer_lookup(self.p, subject, body)

    async def on_command(self, cmd: RestoreFiles) -> None:
        op = Operation(
            id=cmd.operation_id,
            kind="restore-files",
            backup_id=cmd.backup_id,
            bucket=cmd.bucket,
            target_cluster=cmd.target_cluster,
            namespace_mapping={cmd.namespace: cmd.target_namespace},
            request=cmd.model_dump(),
            requested_by=cmd.requested_by,
        )
        if not await self.p.operations.create(op):
            return  # a repeated command
        try:
            await self._start(op, cmd)
        except (CatalogError, PermanentError) as exc:
            await self._end(op, Phase.FAILED, str(exc))
        except Exception as exc:  # the operation must end
            log.exception("file restore %s stopped", op.id)
            await self._end(op, Phase.FAILED, f"file restore stopped: {exc}")

    async def _start(self, op: Operation, cmd: RestoreFiles) -> None:
        catalog, volume = await backed_up_volume(
            self.p, cmd.bucket, cmd.backup_id, cmd.namespace, cmd.claim
        )
        path = await self._volume_path(cmd.target_cluster, cmd.target_namespace, cmd.target_claim)
        work = VolumeWork(
            claim=cmd.target_claim,
            namespace=cmd.target_namespace,
            transfer_id=f"{op.id}-files",
            snapshot_id=volume.snapshot_id,
            state="Moving",
        )

        def start(o: Operation) -> None:
            o.phase, o.source_cluster, o.volumes = Phase.IN_PROGRESS, catalog.cluster, [work]
            o.app_id = catalog.app_id

        await self.p.operations.change(op.id, start)
        await self.p.bus.publish(
            subjects.MOVE_FROM_BUCKET,
            MoveFromBucket(
                transfer_id=work.transfer_id,
                operation_id=op.id,
                cluster=cmd.target_cluster,
                bucket=cmd.bucket,
                snapshot_id=volume.snapshot_id,
                target_path=path,
                paths=cmd.paths,
                target_dir=cmd.target_dir,
            ),
            cluster=cmd.target_cluster,
        )

    async def _volume_path(self, cluster: str, namespace: str, claim: str) -> str:
        kube = await self.p.cluster(cluster)
        found = await kube.get("v1", "PersistentVolumeClaim", claim, namespace)
        if found is None:
            raise PermanentError(f"claim {namespace}/{claim} does not exist in cluster {cluster}")
        volume_name = ClaimView(found).volume_name
        if not volume_name:
            raise PermanentError(f"claim {namespace}/{claim} in cluster {cluster} is not bound")
        entry = await (await self.p.kv(state.VOLUMES)).get(f"{cluster}.{volume_name}")
        record = StoredVolume.model_validate_json(entry.value) if entry else None
        if record is None or not record.path:
            raise PermanentError(
                f"claim {namespace}/{claim} is bound to {volume_name}, which is not a Vessel "
                f"volume of cluster {cluster}: only Vessel volumes can take restored files"
            )
        return record.path

    async def on_transfer(self, result: TransferResult) -> None:
        op = await self.p.operations.record_transfer(result)
        if op.phase in CANCELED or not settled(op):
            return
        if op.volume_errors():
            await self._end(op, Phase.FAILED, result.error or op.volume_errors())
            return
        paths = len(op.request.get("paths", []))
        message = f"{result.files} files ({result.bytes} bytes) of {paths} paths restored"
        await self._end(op, Phase.COMPLETED, message, result)

    async def _end(
        self, op: Operation, phase: Phase, message: str, result: TransferResult | None = None
    ) -> None:
        def end(o: Operation) -> None:
            o.phase, o.message = phase, message

        op = await self.p.operations.change(op.id, end)
        cmd = RestoreFiles.model_validate(op.request)
        event = FilesRestoreEvent(
            operation_id=op.id,
            backup_id=op.backup_id,
            namespace=cmd.namespace,
            claim=cmd.claim,
            target_cluster=cmd.target_cluster,
            target_namespace=cmd.target_namespace,
            target_claim=cmd.target_claim,
            paths=cmd.paths,
            target_dir=cmd.target_dir,
            files=result.files if result else 0,
            bytes=result.bytes if result else 0,
            message=message,
        )
        ok = phase == Phase.COMPLETED
        await self.p.bus.publish(
            subjects.FILES_RESTORED if ok else subjects.FILES_RESTORE_FAILED, event
        )
        log.info("file restore %s ended %s: %s", op.id, phase, message)
