"""Restore verification (`protection.verify`): show that a backup restores, then delete
the copy.

A verification picks its backup (the one named, else the app's newest in the bucket),
takes a slot of its target cluster (`verify.<cluster>.<n>` in KV `protection_locks`;
`verification_slots` per cluster, one by default: later ones queue under
`verify-queue.<cluster>.<op>` and start as slots free), makes scratch namespaces named
after it (labelled `vessel.io/verification`, with a ResourceQuota from
`verification_quota`), and runs an ordinary restore into them (`<id>-restore`) with
`verify_data`: every volume is read back against its snapshot's tree by the mover. The app's
post-restore hooks run in the copy as its probe. It passes when that restore completed
with every object written and still found in the cluster; either way the namespaces are
deleted, the result kept per backup in KV `verifications`, and `verification.passed` or
`.failed` published.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from services.protection.bucket_catalog import CatalogError
from services.protection.context import ProtectionContext
from services.protection.mobility import RESTORE_STEP, parent_of, step_id
from services.protection.state.operations import running
from services.protection.verification_steps import Slots, newest_backup, scratch_names
from vessel.bus.errors import PermanentError
from vessel.contracts import state, subjects
from vessel.contracts.commands import CreateRestore
from vessel.contracts.events import RestoreEvent
from vessel.contracts.operations import Operation, Phase
from vessel.contracts.protection import RestoreOptions
from vessel.contracts.verification import (
    CreateVerification,
    VerificationEvent,
    VerificationRecord,
)
from vessel.kube.errors import KubeError, NotFound

log = logging.getLogger("vessel.protection.verification")
LABEL = "vessel.io/verification"


class VerificationFlow:
    def __init__(self, p: ProtectionContext) -> None:
        self.p = p

    async def slots(self) -> Slots:
        return Slots(await self.p.kv(state.PROTECTION_LOCKS), self.p.verification_slots)

    async def on_command(self, cmd: CreateVerification) -> None:
        op = Operation(
            id=cmd.operation_id,
            kind="verify",
            app_id=cmd.app_id,
            bucket=cmd.bucket,
            backup_id=cmd.backup_id or "",
            schedule=cmd.schedule or "",
            request=cmd.model_dump(mode="json"),
            requested_by=cmd.requested_by,
        )
        if not await self.p.operations.create(op):
            return  # a repeated command
        try:
            await self._plan(op, cmd)
        except (CatalogError, PermanentError) as exc:
            await self._end(await self.p.operations.get(op.id) or op, False, str(exc))
        except Exception as exc:  # the operation must end, and free its slot
            log.exception("verification %s stopped", op.id)
            now = await self.p.operations.get(op.id) or op
            await self._end(now, False, f"verification stopped: {exc}")

    async def _plan(self, op: Operation, cmd: CreateVerification) -> None:
        listing = await self.p.in_bucket(
            cmd.bucket, lambda s: newest_backup(s.store, cmd.app_id, cmd.backup_id)
        )
        cluster = cmd.target_cluster or listing.cluster
        mapping = scratch_names(op.id, listing.namespaces or [listing.namespace])

        def plan(o: Operation) -> None:
            o.backup_id, o.target_cluster, o.namespace_mapping = listing.backup_id, cluster, mapping
            o.source_cluster = listing.cluster

        op = await self.p.operations.change(op.id, plan)
        holder = await (await self.slots()).take(cluster, op.id, self._alive)
        if holder is not None:
            note = f"queued: verification {holder} runs in cluster {cluster}"
            await self.p.operations.change(op.id, lambda o: setattr(o, "message", note))
            return
        await self._start(op)

    async def _start(self, op: Operation) -> None:
        kube = await self.p.cluster(op.target_cluster)
        for name in op.namespace_mapping.values():
            await kube.create(
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": name, "labels": {LABEL: op.id}},
                }
            )
            if self.p.verification_quota:
                await kube.create(
                    {
                        "apiVersion": "v1",
                        "kind": "ResourceQuota",
                        "metadata": {"name": "vessel-verification", "namespace": name},
                        "spec": {"hard": dict(self.p.verification_quota)},
                    }
                )

        def start(o: Operation) -> None:
            o.phase, o.message = Phase.IN_PROGRESS, f"restoring {o.backup_id} to check it"

        op = await self.p.operations.change(op.id, start)
        await self.p.bus.publish(
            subjects.CREATE_RESTORE,
            CreateRestore(
                operation_id=step_id(op.id, RESTORE_STEP),
                backup_id=op.backup_id,
                bucket=op.bucket,
                target_cluster=op.target_cluster,
                namespace_mapping=op.namespace_mapping,
                options=RestoreOptions(verify_data=True, existing="skip"),
                requested_by=op.requested_by,
            ),
        )

    async def _alive(self, op_id: str) -> bool:
        found = await self.p.operations.get(op_id)
        return found is not None and running(found)

    async def on_restore(self, event: RestoreEvent) -> None:
        parent = parent_of(event.operation_id, RESTORE_STEP)
        if parent is None:
            return
        op = await self.p.operations.get(parent)
        restored = await self.p.operations.get(event.operation_id)
        if op is None or op.kind != "verify" or not running(op) or restored is None:
            return
        if running(restored):
            return
        passed, why = await self._checked(op, restored)
        await self._end(op, passed, why, restored)

    async def _checked(self, op: Operation, restored: Operation) -> tuple[bool, str]:
        if restored.phase != Phase.COMPLETED:
            return False, f"restore {restored.id} {restored.phase}: {restored.message}"
        kube = await self.p.cluster(op.target_cluster)
        missing = []
        for item in restored.items:
            if item.api_version and item.state == "Completed":
                where = item.namespace or None
                if await kube.get(item.api_version, item.kind, item.name, where) is None:
                    missing.append(f"{item.kind} {item.namespace}/{item.name}")
        if missing:
            return False, f"restored but not found in the cluster: {', '.join(missing)}"
        return True, "restored, every file read back against the backup and every object found"

    async def _end(
        self, op: Operation, passed: bool, why: str, restored: Operation | None = None
    ) -> None:
        cleaned = await self._clean(op)
        record = self._record(op, passed, why, restored)

        def end(o: Operation) -> None:
            o.phase = Phase.COMPLETED if passed else Phase.FAILED
            o.message = f"{'passed' if passed else 'failed'}: {why}; {cleaned}"

        op = await self.p.operations.change(op.id, end)
        if op.backup_id:
            kv = await self.p.kv(state.VERIFICATIONS)
            await kv.put(f"{op.bucket}.{op.backup_id}", record.model_dump_json().encode())
        event = VerificationEvent(
            operation_id=op.id,
            app_id=op.app_id,
            bucket=op.bucket,
            backup_id=op.backup_id,
            target_cluster=op.target_cluster,
            message=op.message,
        )
        done = subjects.VERIFICATION_PASSED if passed else subjects.VERIFICATION_FAILED
        await self.p.bus.publish(done, event)
        log.info("verification %s of %s: %s", op.id, op.backup_id, op.message)
        if op.target_cluster:
            await self._next(op)

    async def failed_elsewhere(self, op: Operation) -> None:
        """A verification failed by the watchdog or given up: its copy goes, its slot frees."""
        if op.kind == "verify":
            await self._clean(op)
            await self._next(op)

    def _record(
        self, op: Operation, passed: bool, why: str, restored: Operation | None
    ) -> VerificationRecord:
        items = restored.items if restored else []
        volumes = restored.volumes if restored else []
        return VerificationRecord(
            bucket=op.bucket,
            backup_id=op.backup_id or "none",
            app_id=op.app_id,
            operation_id=op.id,
            outcome="Passed" if passed else "Failed",
            verified_at=datetime.now(UTC),
            duration_seconds=(datetime.now(UTC) - op.created).total_seconds(),
            target_cluster=op.target_cluster,
            files=sum(v.files for v in volumes),
            bytes=sum(v.bytes for v in volumes),
            resources=sum(1 for i in items if i.api_version and i.state == "Completed"),
            hooks=sum(1 for i in items if i.kind == "hook"),
            message=why,
        )

    async def _clean(self, op: Operation) -> str:
        """Delete the scratch namespaces (their claims, and so their volumes, with them)."""
        if not op.target_cluster or not op.namespace_mapping:
            return "nothing to delete"
        try:
            kube = await self.p.cluster(op.target_cluster)
            for name in op.namespace_mapping.values():
                try:
                    await kube.delete("v1", "Namespace", name)
                except NotFound:
                    pass
        except (KubeError, PermanentError) as exc:
            log.warning("verification %s: copy left in %s: %s", op.id, op.target_cluster, exc)
            return f"the copy was not deleted: {exc}"
        return f"copy deleted ({', '.join(op.namespace_mapping.values())})"

    async def _next(self, op: Operation) -> None:
        slots = await self.slots()
        await slots.release(op.target_cluster, op.id)
        for queued in await slots.queued(op.target_cluster):
            waiting = await self.p.operations.get(queued)
            if waiting is None or not running(waiting):
                await slots.unqueue(op.target_cluster, queued)
                continue
            if await slots.take(op.target_cluster, queued, self._alive) is None:
                try:
                    await self._start(waiting)
                except Exception as exc:  # it must end (and free the slot) all the same
                    log.exception("verification %s could not start", queued)
                    await self._end(waiting, False, f"verification could not start: {exc}")
            return
