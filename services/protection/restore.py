"""Restore of a backup into a cluster: to other namespaces, another cluster, or in place.

The preflight checks run first and nothing is written when one fails. Then, in the plan's
order (`restore_plan.py`): namespaces, configuration and claims; each claim's volume is
provisioned by the target cluster's provisioner (`volume.provisioned`), filled by the
target's mover, and only when every volume holds its data are workloads and custom
resources written. Each object's outcome is recorded on the operation; one the cluster
refuses makes the restore PartiallyFailed, not Failed, when the volumes made it.
"""

from __future__ import annotations

import logging

from services.protection import inplace
from services.protection.bucket_catalog import read_backup
from services.protection.context import ProtectionContext
from services.protection.hook_runs import restored_app, run_stage
from services.protection.preflight import preflight
from services.protection.restore_apply import Policy, apply_all
from services.protection.restore_leftovers import leave_nothing_half_done
from services.protection.restore_plan import RestorePlan, build_plan
from services.protection.state.operations import CANCELED, running, settled
from vessel.contracts import subjects
from vessel.contracts.commands import CreateRestore, MoveFromBucket
from vessel.contracts.events import RestoreEvent, TransferResult, VolumeProvisioned
from vessel.contracts.operations import Operation, Phase, VolumeWork
from vessel.contracts.protection import (
    ItemResult,
    OperationCanceled,
    RestoreOptions,
    RestorePreflight,
)
from vessel.kube.objects import ClaimView

log = logging.getLogger("vessel.protection.restore")
CLAIM = "PersistentVolumeClaim"


def policy_of(options: RestoreOptions) -> Policy:
    """In place, what survives the clearing is replaced by the backup's version."""
    return "update" if options.in_place else options.existing


def options_of(op: Operation) -> RestoreOptions:
    return op.restore_options or RestoreOptions()


class RestoreFlow:
    def __init__(self, p: ProtectionContext) -> None:
        self.p = p

    async def on_command(self, cmd: CreateRestore) -> None:
        op = Operation(
            id=cmd.operation_id,
            kind="restore",
            backup_id=cmd.backup_id,
            bucket=cmd.bucket,
            target_cluster=cmd.target_cluster,
            namespace_mapping=dict(cmd.namespace_mapping),
            restore_options=cmd.options,
            requested_by=cmd.requested_by,
        )
        if not await self.p.operations.create(op):
            return  # a repeated command
        try:
            await self._start(op, cmd)
        except Exception as exc:  # the operation must end, and an in-place lock be released
            log.exception("restore %s stopped", op.id)
            await self._fail(op, f"restore stopped: {exc}")

    async def _start(self, op: Operation, cmd: CreateRestore) -> None:
        checked = await preflight(
            self.p,
            RestorePreflight(
                backup_id=cmd.backup_id,
                bucket=cmd.bucket,
                target_cluster=cmd.target_cluster,
                namespace_mapping=cmd.namespace_mapping,
                options=cmd.options,
            ),
        )
        if not checked.ok or checked.backup is None or checked.plan is None:
            await self._fail(op, f"rejected, nothing written: {checked.summary()}")
            return
        backup, plan = checked.backup, checked.plan
        op.app_id = backup.app_id
        kube = await self.p.cluster(cmd.target_cluster)
        if cmd.options.in_place:
            try:
                await inplace.lock(self.p, backup.app_id, op.id)
                cleared = await inplace.clear(self.p, kube, backup.app_id, plan)
            except inplace.InPlaceError as exc:
                await self._fail(op, f"in-place restore: {exc}")
                return
            log.info("restore %s: %d objects cleared for an in-place restore", op.id, cleared)
        existing = [ClaimView(o) for o in checked.existing if o.get("kind") == CLAIM]
        kept = {(c.namespace, c.name) for c in existing}
        volumes = []
        for v in backup.volumes:
            target = plan.claims.get((v.namespace, v.claim))
            if target is None or (target.namespace, target.name) in kept:
                continue  # filtered out, or an existing claim whose volume stays untouched
            volumes.append(
                VolumeWork(
                    claim=target.name,
                    namespace=target.namespace,
                    transfer_id=f"{op.id}-{v.claim}",
                    snapshot_id=v.snapshot_id,
                )
            )

        def start(o: Operation) -> None:
            o.phase, o.app_id, o.source_cluster = Phase.IN_PROGRESS, backup.app_id, backup.cluster
            o.volumes = volumes

        op = await self.p.operations.change(op.id, start)
        await self.p.bus.publish(subjects.RESTORE_STARTED, self._event(op))
        for w in volumes:  # waits are recorded before the claims exist: no event can be missed
            await self.p.restore_waits.expect(op.target_cluster, w.namespace, w.claim, op.id)
        items = await apply_all(kube, plan.setup, policy_of(cmd.options))
        op = await self._record(op, items)
        if not volumes:
            await self._finish(op)

    async def on_volume(self, event: VolumeProvisioned) -> None:
        waits = self.p.restore_waits
        op_id = await waits.waiting(event.cluster, event.namespace, event.claim)
        if op_id is None:
            return  # not a claim a restore waits for

        def moving(o: Operation) -> None:
            if not running(o):
                return
            for w in o.volumes:
                if w.namespace == event.namespace and w.claim == event.claim:
                    w.state = "Moving"

        op = await self.p.operations.change(op_id, moving)
        if not running(op):  # canceled while the claim was being provisioned: nothing to fill
            await waits.end(event.cluster, event.namespace, event.claim)
            await self._release(op)
            return
        work = next(
            w for w in op.volumes if w.namespace == event.namespace and w.claim == event.claim
        )
        await self.p.bus.publish(
            subjects.MOVE_FROM_BUCKET,
            MoveFromBucket(
                transfer_id=work.transfer_id,
                operation_id=op.id,
                cluster=event.cluster,
                bucket=op.bucket,
                snapshot_id=work.snapshot_id,
                target_path=event.path,
                verify=options_of(op).verify_data,
            ),
            cluster=event.cluster,
        )
        await waits.end(event.cluster, event.namespace, event.claim)

    async def on_transfer(self, result: TransferResult) -> None:
        op = await self.p.operations.record_transfer(result)
        if op.phase in CANCELED:
            await self._release(op)  # canceled: the flow ends here, the app is unlocked
            return
        if not settled(op):
            return
        if op.volume_errors():
            await self._fail(op, op.volume_errors())
            return
        try:
            await self._finish(op)
        except Exception as exc:
            log.exception("restore %s stopped", op.id)
            await self._fail(op, f"restore stopped: {exc}")

    async def on_canceled(self, event: OperationCanceled) -> None:
        """A canceled restore's leftovers are cleaned up or labelled, and an in-place one
        unlocks its app at once."""
        if event.kind == "restore":
            op = await self.p.operations.get(event.operation_id)
            if op is not None and op.phase in CANCELED:
                await self._leftovers(op)
                await self._release(op)

    async def _plan(self, op: Operation) -> RestorePlan:
        """The plan again, from the bucket: the same inputs give the same plan."""
        trust = options_of(op).trust_unsealed
        _, objects = await self.p.in_bucket(
            op.bucket, lambda s: read_backup(s, op.backup_id, trust)
        )
        return build_plan(objects, op.namespace_mapping, options_of(op))

    async def _finish(self, op: Operation) -> None:
        kube = await self.p.cluster(op.target_cluster)
        plan = await self._plan(op)
        op = await self._record(op, await apply_all(kube, plan.last, policy_of(options_of(op))))
        if op.app_id:
            copy = restored_app(op.app_id, op.target_cluster, op.namespace_mapping, plan.objects)
            await run_stage(self.p, op.id, copy, "post-restore", hooks_of=op.app_id)

        def finish(o: Operation) -> None:
            counts = {s: sum(1 for i in o.items if i.state == s) for s in ("Completed", "Skipped")}
            failed = [i for i in o.items if i.state == "Failed"]
            o.phase = Phase.PARTIALLY_FAILED if failed else Phase.COMPLETED
            o.message = (
                f"{counts['Completed']} resources restored, {counts['Skipped']} skipped, "
                f"{len(failed)} failed; {len(o.volumes)} volumes restored"
            )
            if failed:
                o.message += "; failed: " + "; ".join(
                    f"{i.kind} {i.namespace}/{i.name}: {i.message}" for i in failed
                )

        op = await self.p.operations.change(op.id, finish)
        log.info("restore %s ended %s in %s", op.id, op.phase, op.target_cluster)
        await self._release(op)
        await self.p.bus.publish(subjects.RESTORE_COMPLETED, self._event(op))

    async def _record(self, op: Operation, items: list[ItemResult]) -> Operation:
        def record(o: Operation) -> None:
            o.items.extend(items)

        return await self.p.operations.change(op.id, record)

    async def _release(self, op: Operation) -> None:
        if options_of(op).in_place and op.app_id:
            await inplace.unlock(self.p, op.app_id, op.id)

    async def _fail(self, op: Operation, message: str) -> None:
        def fail(o: Operation) -> None:
            o.phase, o.message = Phase.FAILED, message
            o.app_id = o.app_id or op.app_id

        op = await self.p.operations.change(op.id, fail)
        log.warning("restore %s failed: %s", op.id, message)
        await self.failed_elsewhere(op)

    async def failed_elsewhere(self, op: Operation) -> None:
        """What follows a restore's failure, wherever it was decided (here, its watchdog,
        or a message given up): what it wrote is cleaned up or labelled, its in-place lock
        released and `restore.failed` published. Other kinds are not the restore's."""
        if op.kind != "restore":
            return
        op = await self._leftovers(op)
        await self._release(op)
        await self.p.bus.publish(subjects.RESTORE_FAILED, self._event(op))

    async def _leftovers(self, op: Operation) -> Operation:
        try:
            done = await leave_nothing_half_done(self.p, op, op.message)
        except Exception as exc:  # the operation has ended; say what was left
            log.exception("restore %s: clean-up failed", op.id)
            done = f"clean-up failed: {exc}"
        if not done:
            return op

        def note(o: Operation) -> None:
            o.message = f"{o.message}; {done}" if o.message else done

        return await self.p.operations.change(op.id, note)

    @staticmethod
    def _event(op: Operation) -> RestoreEvent:
        return RestoreEvent(
            operation_id=op.id,
            backup_id=op.backup_id,
            target_cluster=op.target_cluster,
            namespace_mapping=op.namespace_mapping,
            message=op.message,
        )
