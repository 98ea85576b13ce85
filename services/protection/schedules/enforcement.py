"""Retention after each scheduled run: when a run's operation ends (backup or snapshot
completed/failed, its operation carrying `schedule`), the schedule's runs are read from its
run tickets in `schedule_runs` (the run index; each ticket names its operation, whose phase
says whether the run succeeded), `retention.decide` picks what goes, and each such run gets a
`backup.delete` / `snapshot.delete` command with a deterministic operation id, so two
replicas enforcing at once ask for one deletion.

A removed schedule's runs are left alone: they stay until deleted by hand.
"""

from __future__ import annotations

import logging

from services.protection.retention import Run, decide
from services.protection.schedules.tickets import derived_id
from services.protection.state.operations import OperationStore
from services.protection.state.tickets import RunLedger, RunTicket
from vessel.bus.nats_port import Bus, KeyValue
from vessel.contracts import subjects
from vessel.contracts.events import AppSnapshotEvent, BackupEvent
from vessel.contracts.operations import Operation, Phase
from vessel.contracts.protection import DeleteAppSnapshot, DeleteBackup, ScheduleSpec
from vessel.contracts.verification import VerificationRecord

log = logging.getLogger("vessel.protection.retention")


class RetentionEnforcer:
    def __init__(
        self,
        bus: Bus,
        operations: OperationStore,
        schedules: KeyValue,
        runs: KeyValue,
        verifications: KeyValue | None = None,
    ) -> None:
        """`verifications`: KV `verifications`, for `floor_verified` (None: none verified)."""
        self.bus, self.verifications = bus, verifications
        self.operations = operations
        self.schedules = schedules
        self.ledger = RunLedger(runs)

    async def on_run_ended(self, event: BackupEvent | AppSnapshotEvent) -> None:
        op = await self.operations.get(event.operation_id)
        if op is not None and op.schedule and op.done:
            await self.enforce(op.schedule)

    async def enforce(self, schedule_id: str) -> list[str]:
        """Ask for the deletion of every run of the schedule its retention does not keep;
        returns the deletion operation ids."""
        entry = await self.schedules.get(schedule_id)
        if entry is None or not entry.value:
            return []
        spec = ScheduleSpec.model_validate_json(entry.value)
        runs: list[Run] = []
        by_op: dict[str, tuple[RunTicket, int, Operation | None]] = {}
        for ticket, revision in await self.ledger.tickets(schedule_id):
            if not ticket.operation_id or ticket.deleted_by:
                continue
            op = await self.operations.get(ticket.operation_id)
            # No operation yet: the command is still queued, so the run is in progress. A
            # run being canceled is not finished either: it is deleted once Canceled.
            finished = op is not None and op.done
            successful = op is not None and op.phase == Phase.COMPLETED
            verified = successful and await self._verified(op)
            runs.append(Run(ticket.operation_id, ticket.due, successful, finished, verified))
            by_op[ticket.operation_id] = (ticket, revision, op)
        started = []
        for run_id in decide(runs, spec.retention).delete:
            ticket, revision, op = by_op[run_id]
            assert op is not None  # only finished runs are ever deleted
            deletion_id = derived_id(run_id, "delete")
            await self._delete(spec, op, deletion_id)
            await self.ledger.mark_deleted(ticket, revision, deletion_id)
            started.append(deletion_id)
        if started:
            log.info("schedule %s: retention deletes %d runs", schedule_id, len(started))
        return started

    async def _verified(self, op: Operation | None) -> bool:
        if op is None or op.kind != "backup" or self.verifications is None:
            return False
        entry = await self.verifications.get(f"{op.bucket}.{op.backup_id or op.id}")
        if entry is None:
            return False
        return VerificationRecord.model_validate_json(entry.value).outcome == "Passed"

    async def _delete(self, spec: ScheduleSpec, op: Operation, deletion_id: str) -> None:
        by = f"schedule/{spec.id}"
        if op.kind == "snapshot":
            await self.bus.publish(
                subjects.DELETE_SNAPSHOT,
                DeleteAppSnapshot(
                    operation_id=deletion_id, snapshot_id=op.snapshot_id or op.id, requested_by=by
                ),
            )
        else:
            await self.bus.publish(
                subjects.DELETE_BACKUP,
                DeleteBackup(
                    operation_id=deletion_id,
                    backup_id=op.backup_id or op.id,
                    bucket=op.bucket or spec.bucket,
                    requested_by=by,
                ),
            )
