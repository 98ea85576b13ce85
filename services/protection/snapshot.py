"""App snapshots: an app's resources archived in the bucket plus one group of
VolumeSnapshots of its claims, taken by its cluster's provisioner back to back.

Order: resources first (`snapshots/<id>/resources.sealed`), then the record in KV
`app_snapshots` (InProgress), then the group command; the provisioner's answer fills in
the volumes and ends the snapshot Completed, PartiallyFailed (some claims failed) or
Failed. A backup without a snapshot to copy runs the same steps inside its own
operation (the snapshot's id is the backup's), so this module serves both.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Literal

from services.protection.bucket_catalog import write_snapshot_resources
from services.protection.context import ProtectionContext
from services.protection.hook_runs import run_stage
from services.protection.hooks import HookOutcome
from services.protection.resources import sanitize
from services.protection.state.operations import running
from vessel.contracts import subjects
from vessel.contracts.events import AppRecord, AppSnapshotEvent
from vessel.contracts.group_snapshots import GroupClaim, GroupSnapshotResult, SnapshotGroup
from vessel.contracts.hooks import HookStage
from vessel.contracts.models import LabelValue, Payload
from vessel.contracts.operations import Operation, Phase, now
from vessel.contracts.protection import (
    AppSnapshotRecord,
    CreateAppSnapshot,
    ItemResult,
    SnapshotVolume,
)
from vessel.kube.errors import KubeError

log = logging.getLogger("vessel.protection.snapshot")


class CannotSnapshot(Exception):
    """The snapshot cannot start: the message says why (the caller fails its operation)."""


class _GroupId(Payload):
    id: LabelValue


def group_id_problem(snapshot_id: str) -> str:
    """Why a snapshot id cannot name a group of VolumeSnapshots (a label value); "" if it can."""
    try:
        _GroupId(id=snapshot_id)
    except ValueError:
        return (
            f"snapshot id {snapshot_id!r} must be at most 63 characters and end with a letter "
            "or digit: it labels the snapshot's VolumeSnapshots (vessel.io/group)"
        )
    return ""


def claims_of(app: AppRecord) -> tuple[list[GroupClaim], list[GroupClaim]]:
    """The app's claims with their namespaces (user-defined apps span namespaces): those
    bound to a volume, and those not bound (nothing to snapshot)."""
    where = {r.name: r.namespace for r in app.resources if r.kind == "PersistentVolumeClaim"}
    bound: list[GroupClaim] = []
    unbound: list[GroupClaim] = []
    for c in app.claims:
        claim = GroupClaim(namespace=where.get(c.name) or app.namespace, claim=c.name)
        (bound if c.volume_name else unbound).append(claim)
    return bound, unbound


def outcome(members: Iterable[ItemResult]) -> Literal["Completed", "PartiallyFailed", "Failed"]:
    states = [m.state for m in members]
    if all(s == "Completed" for s in states):
        return "Completed"
    return "Failed" if all(s == "Failed" for s in states) else "PartiallyFailed"


class SnapshotFlow:
    def __init__(self, p: ProtectionContext) -> None:
        self.p = p

    async def get(self, snapshot_id: str) -> AppSnapshotRecord | None:
        return await (await self.p.snapshot_store()).get(snapshot_id)

    async def _save(self, record: AppSnapshotRecord) -> None:
        await (await self.p.snapshot_store()).save(record)

    async def on_command(self, cmd: CreateAppSnapshot) -> None:
        op = Operation(
            id=cmd.operation_id,
            kind="snapshot",
            app_id=cmd.app_id,
            bucket=cmd.bucket,
            snapshot_id=cmd.operation_id,
            schedule=cmd.schedule or "",
            requested_by=cmd.requested_by,
        )
        if not await self.p.operations.create(op):
            existing = await self.p.operations.get(op.id)
            if existing is None or not running(existing) or existing.phase == Phase.IN_PROGRESS:
                return  # a repeated command: the first one owns the work
        try:
            await self.begin(op)
        except CannotSnapshot as exc:
            await self.fail(op, str(exc))

    async def begin(self, op: Operation) -> AppSnapshotRecord:
        """Archive the resources, record the snapshot (id `op.snapshot_id`), ask for the
        group. The record returned is still InProgress unless the app has no claims."""
        snapshot_id = op.snapshot_id
        if problem := group_id_problem(snapshot_id):
            raise CannotSnapshot(problem)
        entry = await self.p.inventory.get(f"apps.{op.app_id}")
        if entry is None:
            raise CannotSnapshot(f"app {op.app_id} is not in the inventory")
        app = AppRecord.model_validate_json(entry.value)
        kube = await self.p.cluster(app.cluster)
        objects = []
        try:
            for ref in app.resources:
                obj = await kube.get(ref.api_version, ref.kind, ref.name, ref.namespace)
                if obj is not None:
                    objects.append(sanitize(obj))
        except KubeError as exc:  # the agent is away, or the API refused: ends the operation
            raise CannotSnapshot(f"reading the resources of {op.app_id} failed: {exc}") from exc
        key = await self.p.in_bucket(
            op.bucket, lambda s: write_snapshot_resources(s, snapshot_id, objects)
        )
        claims, unbound = claims_of(app)
        record = AppSnapshotRecord(
            id=snapshot_id,
            app_id=op.app_id,
            cluster=app.cluster,
            namespace=app.namespace,
            bucket=op.bucket,
            resources_key=key,
            phase="InProgress",
            schedule=op.schedule or None,
            created=op.created,
        )
        await self._save(record)

        def start(o: Operation) -> None:
            o.phase, o.source_cluster = Phase.IN_PROGRESS, app.cluster
            o.items = (
                [*o.items]
                + [  # after what ran before (pre-backup hooks)
                    ItemResult(
                        kind="PersistentVolumeClaim",
                        name=c.claim,
                        namespace=c.namespace,
                        state="Pending",
                    )
                    for c in claims
                ]
                + [
                    ItemResult(
                        kind="PersistentVolumeClaim",
                        name=c.claim,
                        namespace=c.namespace,
                        state="Skipped",
                        message="not bound to a volume: no data to snapshot",
                    )
                    for c in unbound
                ]
            )

        op = await self.p.operations.change(op.id, start)
        if op.kind == "snapshot":
            await self.p.bus.publish(subjects.SNAPSHOT_STARTED, self._event(op, record))
        if not claims:
            return await self.settle(op, record, [], 0.0)
        pre = await self._hooks(op, app, "pre-snapshot")
        if pre.failed:
            failed = "; ".join(i.name for i in pre.items if i.state == "Failed")
            raise CannotSnapshot(f"pre-snapshot hook failed: {failed}")
        await self.p.bus.publish(
            subjects.SNAPSHOT_GROUP,
            SnapshotGroup(operation_id=op.id, group_id=snapshot_id, claims=claims),
            cluster=app.cluster,
        )
        return record

    async def on_group(self, result: GroupSnapshotResult) -> AppSnapshotRecord | None:
        """The provisioner's answer: the snapshot ends. None when it is not ours to end (an
        operation already over, a repeated answer)."""
        op = await self.p.operations.get(result.operation_id)
        record = await self.get(result.group_id)
        if op is None or not running(op) or record is None or record.phase != "InProgress":
            return None
        entry = await self.p.inventory.get(f"apps.{op.app_id}")
        post = HookOutcome()
        if entry is not None:  # an app gone meanwhile has no containers to resume
            post = await self._hooks(
                op, AppRecord.model_validate_json(entry.value), "post-snapshot"
            )
        items = [
            ItemResult(
                kind="PersistentVolumeClaim",
                name=m.claim,
                namespace=m.namespace,
                state="Failed" if m.error else "Completed",
                message=m.error,
            )
            for m in result.members
        ]
        if not items:  # the whole command was refused
            items = [
                i.model_copy(update={"state": "Failed", "message": result.error})
                for i in op.items
                if i.kind == "PersistentVolumeClaim" and i.state != "Skipped"
            ]
        volumes = [
            SnapshotVolume(
                namespace=m.namespace,
                claim=m.claim,
                volume_snapshot=m.volume_snapshot,
                path=m.path,
                bytes=m.bytes,
            )
            for m in result.members
            if not m.error
        ]
        record = record.model_copy(update={"volumes": volumes})
        return await self.settle(op, record, items, result.spread_seconds, post)

    async def _hooks(self, op: Operation, app: AppRecord, stage: HookStage) -> HookOutcome:
        return await run_stage(self.p, op.id, app, stage)

    async def settle(
        self,
        op: Operation,
        record: AppSnapshotRecord,
        items: list[ItemResult],
        spread: float,
        post: HookOutcome | None = None,
    ) -> AppSnapshotRecord:
        """End the snapshot with its claims' `items`; a failed post-snapshot hook makes a
        complete group PartiallyFailed (the data is whole, the app may not have resumed)."""
        phase = outcome(items)
        if post is not None and post.failed and phase == "Completed":
            phase = "PartiallyFailed"
        record = record.model_copy(update={"phase": phase, "completed": now()})
        await self._save(record)
        failed = [f"{i.namespace}/{i.name}: {i.message}" for i in items if i.state == "Failed"]
        if post is not None and post.failed:
            failed.append("post-snapshot hook failed")
        message = f"{len(record.volumes)} of {len(items)} volumes within {spread:.3f}s" + (
            f"; failed: {'; '.join(failed)}" if failed else ""
        )

        def finish(o: Operation) -> None:
            kept = [i for i in o.items if i.kind != "PersistentVolumeClaim" or i.state == "Skipped"]
            o.items = [*kept, *items]
            if o.kind == "snapshot":
                o.phase, o.message = Phase(phase), message

        op = await self.p.operations.change(op.id, finish)
        log.info("app snapshot %s of %s: %s (%s)", record.id, record.app_id, phase, message)
        if op.kind == "snapshot":
            done = subjects.SNAPSHOT_COMPLETED if phase == "Completed" else subjects.SNAPSHOT_FAILED
            await self.p.bus.publish(done, self._event(op, record))
        return record

    async def fail(self, op: Operation, message: str) -> None:
        def fail(o: Operation) -> None:
            o.phase, o.message = Phase.FAILED, message

        op = await self.p.operations.change(op.id, fail)
        log.warning("app snapshot %s failed: %s", op.id, message)
        await self.abandon(op.snapshot_id)
        event = AppSnapshotEvent(
            snapshot_id=op.snapshot_id, operation_id=op.id, app_id=op.app_id, message=message
        )
        await self.p.bus.publish(subjects.SNAPSHOT_FAILED, event)

    async def abandon(self, snapshot_id: str) -> None:
        """A snapshot whose operation failed before it ended is Failed too."""
        record = await self.get(snapshot_id)
        if record is not None and record.phase == "InProgress":
            await self._save(record.model_copy(update={"phase": "Failed", "completed": now()}))

    @staticmethod
    def _event(op: Operation, record: AppSnapshotRecord) -> AppSnapshotEvent:
        return AppSnapshotEvent(
            snapshot_id=record.id,
            operation_id=op.id,
            app_id=op.app_id,
            volumes=len(record.volumes),
            message=op.message,
        )
