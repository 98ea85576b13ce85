"""Mobility: clone and migrate, one operation each, made of backup and restore operations.

A clone from the live app backs it up (the backup takes a fresh app snapshot first) and
restores that backup into the target; from an app snapshot it backs up that snapshot; from
a backup it only restores. A migration backs up, restores, then scales the source's
Deployments and StatefulSets to zero (their objects and data stay, for a way back).

The steps are ordinary operations with derived ids (`<id>-backup`, `<id>-restore`), so they
run, retry and report like any other; this flow only listens for their outcome events and
starts the next step. Derived ids also make every step idempotent under redelivery.
"""

from __future__ import annotations

import logging
from typing import Any

from services.protection.context import ProtectionContext
from services.protection.state.operations import running
from vessel.contracts import subjects
from vessel.contracts.commands import CreateBackup, CreateRestore
from vessel.contracts.events import AppRecord, BackupEvent, RestoreEvent
from vessel.contracts.operations import Operation, Phase
from vessel.contracts.protection import (
    CompositeEvent,
    CreateClone,
    CreateMigration,
    ItemResult,
    RestoreOptions,
)

log = logging.getLogger("vessel.protection.mobility")
SCALABLE = ("Deployment", "StatefulSet")
BACKUP_STEP, RESTORE_STEP, SCALE_STEP = "backup", "restore", "scale-down"


def step_id(parent: str, step: str) -> str:
    return f"{parent}-{step}"


def parent_of(child: str, step: str) -> str | None:
    suffix = f"-{step}"
    return child[: -len(suffix)] if child.endswith(suffix) else None


def with_step(items: list[ItemResult], step: str, state: str, message: str) -> list[ItemResult]:
    """The items with step `step` in `state`, saying `message`."""
    changed = {"state": state, "message": message}
    return [i.model_copy(update=changed) if i.name == step else i for i in items]


class MobilityFlow:
    def __init__(self, p: ProtectionContext) -> None:
        self.p = p

    async def on_clone(self, cmd: CreateClone) -> None:
        steps = ([] if cmd.source == "backup" else [BACKUP_STEP]) + [RESTORE_STEP]
        given = {"live": "-", "snapshot": cmd.snapshot_id, "backup": cmd.backup_id}
        error = None if given[cmd.source] else f"source {cmd.source} needs {cmd.source}_id"
        await self._begin(cmd, "clone", steps, error)

    async def on_migration(self, cmd: CreateMigration) -> None:
        steps = [BACKUP_STEP, RESTORE_STEP] + ([SCALE_STEP] if cmd.scale_down_source else [])
        await self._begin(cmd, "migrate", steps, None)

    async def _begin(
        self, cmd: CreateClone | CreateMigration, kind: str, steps: list[str], error: str | None
    ) -> None:
        op = Operation(
            id=cmd.operation_id,
            kind=kind,
            app_id=cmd.app_id,
            bucket=cmd.bucket,
            target_cluster=cmd.target_cluster,
            namespace_mapping=dict(cmd.namespace_mapping),
            snapshot_id=getattr(cmd, "snapshot_id", None) or "",
            backup_id=getattr(cmd, "backup_id", None) or "",
            requested_by=cmd.requested_by,
            request=cmd.model_dump(mode="json"),
            items=[ItemResult(kind="step", name=s, state="Pending") for s in steps],
        )
        if not await self.p.operations.create(op):
            return  # a repeated command: the first delivery owns the work
        if error:
            await self._fail(op, steps[0], error)
            return
        app_entry = await self.p.inventory.get(f"apps.{op.app_id}")
        if app_entry is None and BACKUP_STEP in steps:
            await self._fail(op, BACKUP_STEP, f"app {op.app_id} is not in the inventory")
            return
        if app_entry is not None:
            source = AppRecord.model_validate_json(app_entry.value).cluster
            await self.p.operations.change(op.id, lambda o: setattr(o, "source_cluster", source))
        await self._announce(op, "started", steps[0])
        await self._start(op, steps[0])

    async def _start(self, op: Operation, step: str) -> None:
        op = await self._mark(op.id, step, "InProgress")
        request: dict[str, Any] = op.request
        if step == BACKUP_STEP:
            await self.p.bus.publish(
                subjects.CREATE_BACKUP,
                CreateBackup(
                    operation_id=step_id(op.id, BACKUP_STEP),
                    app_id=op.app_id,
                    bucket=op.bucket,
                    snapshot_id=op.snapshot_id or None,
                    requested_by=op.requested_by,
                ),
            )
        elif step == RESTORE_STEP:
            await self.p.bus.publish(
                subjects.CREATE_RESTORE,
                CreateRestore(
                    operation_id=step_id(op.id, RESTORE_STEP),
                    backup_id=op.backup_id,
                    bucket=op.bucket,
                    target_cluster=op.target_cluster,
                    namespace_mapping=op.namespace_mapping,
                    options=RestoreOptions.model_validate(request.get("options") or {}),
                    requested_by=op.requested_by,
                ),
            )
        else:
            await self._scale_down(op)

    async def on_backup(self, event: BackupEvent) -> None:
        await self._child_ended(event.operation_id, BACKUP_STEP, event.message, event.backup_id)

    async def on_restore(self, event: RestoreEvent) -> None:
        await self._child_ended(event.operation_id, RESTORE_STEP, event.message, "")

    async def _child_ended(self, child: str, step: str, message: str, backup_id: str) -> None:
        parent = parent_of(child, step)
        op = await self.p.operations.get(parent) if parent else None
        if op is None or op.kind not in ("clone", "migrate") or not running(op):
            return
        outcome = await self.p.operations.get(child)
        if outcome is None or running(outcome):
            return
        if outcome.phase != Phase.COMPLETED:
            await self._fail(op, step, f"{step} {child} {outcome.phase}: {outcome.message}")
            return
        if backup_id:
            op = await self.p.operations.change(op.id, lambda o: setattr(o, "backup_id", backup_id))
        op = await self._mark(op.id, step, "Completed", outcome.message)
        await self._next(op, step)

    async def _next(self, op: Operation, finished: str) -> None:
        names = [i.name for i in op.items]
        if finished == names[-1]:
            await self._complete(op)
        else:
            await self._start(op, names[names.index(finished) + 1])

    async def _scale_down(self, op: Operation) -> None:
        entry = await self.p.inventory.get(f"apps.{op.app_id}")
        if entry is None:
            await self._fail(op, SCALE_STEP, f"app {op.app_id} is gone from the inventory")
            return
        app = AppRecord.model_validate_json(entry.value)
        kube = await self.p.cluster(app.cluster)
        scaled = []
        for ref in app.workloads:
            if ref.kind in SCALABLE:
                await kube.patch(
                    ref.api_version, ref.kind, ref.name, ref.namespace, {"spec": {"replicas": 0}}
                )
                scaled.append(f"{ref.kind} {ref.namespace}/{ref.name}")
        op = await self._mark(op.id, SCALE_STEP, "Completed", f"scaled to 0: {', '.join(scaled)}")
        await self._next(op, SCALE_STEP)

    async def _mark(self, op_id: str, step: str, state: str, message: str = "") -> Operation:
        def mark(o: Operation) -> None:
            o.phase = Phase.IN_PROGRESS
            o.items = with_step(o.items, step, state, message)
            o.message = f"{step}: {state}"

        return await self.p.operations.change(op_id, mark)

    async def _complete(self, op: Operation) -> None:
        def done(o: Operation) -> None:
            o.phase, o.message = Phase.COMPLETED, f"{o.kind} of {o.app_id} into {o.target_cluster}"

        op = await self.p.operations.change(op.id, done)
        log.info("%s %s completed", op.kind, op.id)
        await self._announce(op, "completed", "")

    async def _fail(self, op: Operation, step: str, message: str) -> None:
        def fail(o: Operation) -> None:
            o.phase, o.message = Phase.FAILED, message
            o.items = with_step(o.items, step, "Failed", message)

        op = await self.p.operations.change(op.id, fail)
        log.warning("%s %s failed at %s: %s", op.kind, op.id, step, message)
        await self._announce(op, "failed", step)

    async def _announce(self, op: Operation, verb: str, step: str) -> None:
        events = {
            ("clone", "started"): subjects.CLONE_STARTED,
            ("clone", "completed"): subjects.CLONE_COMPLETED,
            ("clone", "failed"): subjects.CLONE_FAILED,
            ("migrate", "started"): subjects.MIGRATION_STARTED,
            ("migrate", "completed"): subjects.MIGRATION_COMPLETED,
            ("migrate", "failed"): subjects.MIGRATION_FAILED,
        }
        await self.p.bus.publish(
            events[(op.kind, verb)],
            CompositeEvent(
                operation_id=op.id,
                kind=op.kind,
                app_id=op.app_id,
                target_cluster=op.target_cluster,
                step=step,
                message=op.message,
            ),
        )
