"""Restore of a backup into a cluster, optionally into other namespaces.

Order: namespaces, configuration and claims first; each claim's volume is provisioned by
the target cluster's provisioner (`volume.provisioned`), filled by the target's mover, and
only when every volume holds its data are the workloads created.
"""

from __future__ import annotations

import logging
from typing import Any

from services.protection.bucket_catalog import BackupCatalog, read_catalog, read_resources
from services.protection.context import Protection
from services.protection.resources import is_workload, remap_namespace, restore_rank
from vessel.bus.errors import PermanentError
from vessel.contracts import catalog
from vessel.contracts.commands import CreateRestore, MoveFromBucket
from vessel.contracts.events import RestoreEvent, TransferResult, VolumeProvisioned
from vessel.contracts.operations import Operation, VolumeWork
from vessel.kube.errors import AlreadyExists

log = logging.getLogger("vessel.protection.restore")
Obj = dict[str, Any]


def wait_key(cluster: str, namespace: str, claim: str) -> str:
    return f"{cluster}.{namespace}.{claim}"


class RestoreFlow:
    def __init__(self, p: Protection) -> None:
        self.p = p

    async def on_command(self, cmd: CreateRestore) -> None:
        op = Operation(
            id=cmd.operation_id,
            kind="restore",
            backup_id=cmd.backup_id,
            bucket=cmd.bucket,
            target_cluster=cmd.target_cluster,
            namespace_mapping=dict(cmd.namespace_mapping),
            requested_by=cmd.requested_by,
        )
        if not await self.p.operations.create(op):
            return  # a repeated command
        kube = self.p.cluster(cmd.target_cluster)
        try:
            backup = await self.p.in_bucket(cmd.bucket, lambda s: read_catalog(s, cmd.backup_id))
            objects = await self.p.in_bucket(
                cmd.bucket, lambda s: read_resources(s, backup.resources_key)
            )
        except Exception as exc:
            await self._fail(op, f"cannot read backup {cmd.backup_id}: {exc}")
            return
        mapping = op.namespace_mapping
        objects = sorted((remap_namespace(o, mapping) for o in objects), key=restore_rank)
        volumes = [
            VolumeWork(
                claim=v.claim,
                namespace=mapping.get(v.namespace, v.namespace),
                transfer_id=f"{op.id}-{v.claim}",
                snapshot_id=v.snapshot_id,
            )
            for v in backup.volumes
        ]

        def start(o: Operation) -> None:
            o.phase, o.app_id, o.source_cluster, o.volumes = (
                "InProgress",
                backup.app_id,
                backup.cluster,
                volumes,
            )

        op = await self.p.operations.change(op.id, start)
        await self.p.bus.publish(catalog.RESTORE_STARTED, self._event(op))
        for w in volumes:  # waits are recorded before the claims exist: no event can be missed
            await self.p.waits.put(
                wait_key(op.target_cluster, w.namespace, w.claim), op.id.encode()
            )
        for ns in sorted(
            {o["metadata"]["namespace"] for o in objects if o["metadata"].get("namespace")}
        ):
            await self._create(
                kube, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
            )
        for obj in objects:
            if not is_workload(obj):
                await self._create(kube, obj)
        if not volumes:
            await self._finish(op, backup)

    async def on_volume(self, event: VolumeProvisioned) -> None:
        key = wait_key(event.cluster, event.namespace, event.claim)
        entry = await self.p.waits.get(key)
        if entry is None:
            return  # not a claim a restore waits for
        op_id = entry.value.decode()

        def moving(o: Operation) -> None:
            for w in o.volumes:
                if w.namespace == event.namespace and w.claim == event.claim:
                    w.state = "Moving"

        op = await self.p.operations.change(op_id, moving)
        work = next(
            w for w in op.volumes if w.namespace == event.namespace and w.claim == event.claim
        )
        await self.p.bus.publish(
            catalog.MOVE_FROM_BUCKET,
            MoveFromBucket(
                transfer_id=work.transfer_id,
                operation_id=op.id,
                cluster=event.cluster,
                bucket=op.bucket,
                snapshot_id=work.snapshot_id,
                target_path=event.path,
            ),
            cluster=event.cluster,
        )
        await self.p.waits.delete(key)

    async def on_transfer(self, result: TransferResult) -> None:
        op = await self.p.operations.record_transfer(result)
        if not op.settled:
            return
        if op.volume_errors():
            await self._fail(op, op.volume_errors())
            return
        backup = await self.p.in_bucket(op.bucket, lambda s: read_catalog(s, op.backup_id))
        await self._finish(op, backup)

    async def _finish(self, op: Operation, backup: BackupCatalog) -> None:
        kube = self.p.cluster(op.target_cluster)
        objects = await self.p.in_bucket(
            op.bucket, lambda s: read_resources(s, backup.resources_key)
        )
        for obj in sorted(objects, key=restore_rank):
            if is_workload(obj):
                await self._create(kube, remap_namespace(obj, op.namespace_mapping))

        def finish(o: Operation) -> None:
            o.phase = "Completed"
            o.message = f"{len(objects)} resources, {len(o.volumes)} volumes restored"

        op = await self.p.operations.change(op.id, finish)
        log.info("restore %s completed into %s", op.id, op.target_cluster)
        await self.p.bus.publish(catalog.RESTORE_COMPLETED, self._event(op))

    @staticmethod
    async def _create(kube: Any, obj: Obj) -> None:
        try:
            await kube.create(obj)
        except AlreadyExists:
            pass  # existing-resource policy "skip", the safe default
        except Exception as exc:
            meta = obj.get("metadata", {})
            raise PermanentError(
                f"create {obj.get('kind')} {meta.get('namespace')}/{meta.get('name')}: {exc}"
            ) from exc

    async def _fail(self, op: Operation, message: str) -> None:
        def fail(o: Operation) -> None:
            o.phase, o.message = "Failed", message

        op = await self.p.operations.change(op.id, fail)
        log.warning("restore %s failed: %s", op.id, message)
        await self.p.bus.publish(catalog.RESTORE_FAILED, self._event(op))

    @staticmethod
    def _event(op: Operation) -> RestoreEvent:
        return RestoreEvent(
            operation_id=op.id,
            backup_id=op.backup_id,
            target_cluster=op.target_cluster,
            namespace_mapping=op.namespace_mapping,
            message=op.message,
        )
