"""Every operation ends: one that has not ended and has shown neither a change of its
record nor a transfer's progress for `ProtectionContext.operation_stall` is failed, its
message naming how long and what it still waited for (volumes still moving, or its last
step). Progress events are overheard as they pass (no consumer), so a long transfer that
moves keeps its operation alive; a mover that died or a step nobody answers does not.

Late work for an operation failed this way changes nothing: flows act only on running
operations (`state.operations.running`), and an ended phase never changes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError

from services.protection.given_up import Failed
from services.protection.mobility import BACKUP_STEP, RESTORE_STEP, parent_of
from services.protection.operation_gauges import OperationGauges
from services.protection.state.operations import OperationStore
from vessel.bus.nats_port import Bus
from vessel.contracts import subjects
from vessel.contracts.envelope import CloudEvent
from vessel.contracts.operations import Operation, Phase, PhaseTransitionError
from vessel.stopping import cancel_and_wait

log = logging.getLogger("vessel.protection")


class Watchdog:
    def __init__(
        self,
        bus: Bus,
        view: OperationGauges,
        store: OperationStore,
        stall: timedelta,
        interval: float = 30.0,
        failed: Failed | None = None,
    ) -> None:
        """`view`: the operations as protection follows them (their gauges' view);
        `failed` is told each operation it fails."""
        self.bus, self.view, self.store = bus, view, store
        self.stall, self.interval, self.failed = stall, interval, failed
        self.progress: dict[str, float] = {}
        """Operation id -> when (monotonic) a transfer of it last reported progress."""

    def heard(self, body: bytes) -> None:
        try:
            event = CloudEvent.model_validate_json(body)
            op_id = str((event.data or {}).get("operation_id", ""))
        except (ValidationError, AttributeError):
            return
        if op_id:
            self.progress[op_id] = time.monotonic()
            for step in (BACKUP_STEP, RESTORE_STEP):  # a step's progress keeps its parent alive
                if (parent := parent_of(op_id, step)) is not None:
                    self.progress[parent] = time.monotonic()

    async def run(self) -> None:
        listening = [
            await self.bus.overhear(subject, self.heard)
            for subject in (
                subjects.TRANSFER_PROGRESS.filter_subject,
                subjects.TRANSFER_PROGRESS.legacy_subject,
            )
            if subject
        ]
        try:
            while True:
                await asyncio.sleep(self.interval)
                await self.check(datetime.now(UTC))
        finally:
            await cancel_and_wait(listening)

    async def check(self, now: datetime) -> list[str]:
        """Fail the operations stalled at `now`; returns their ids."""
        failed = []
        for op_id, seen in list(self.view.seen.items()):
            if seen.done or seen.phase == Phase.CANCELING:
                continue
            quiet = now - seen.updated
            heard = self.progress.get(op_id)
            if heard is not None:
                quiet = min(quiet, timedelta(seconds=time.monotonic() - heard))
            if quiet < self.stall:
                continue
            op = await self.store.get(op_id)
            if op is None or op.done or op.phase == Phase.CANCELING:
                continue
            message = f"no change nor progress for {int(quiet.total_seconds())}s; " + (
                _waiting_for(op)
            )

            def fail(o: Operation, message: str = message) -> None:
                if not o.done and o.phase != Phase.CANCELING:
                    o.phase, o.message = Phase.FAILED, message

            try:
                op = await self.store.change(op_id, fail)
            except PhaseTransitionError:
                continue  # it ended meanwhile
            log.error("operation %s failed by its deadline: %s", op_id, message)
            if self.failed is not None and op.phase == Phase.FAILED:
                await self.failed(op)
            self.progress.pop(op_id, None)
            failed.append(op_id)
        return failed


def _waiting_for(op: Operation) -> str:
    moving = [
        f"{v.namespace}/{v.claim} ({v.state})"
        for v in op.volumes
        if v.state in ("Waiting", "Moving")
    ]
    if moving:
        return f"volume transfers not ended: {', '.join(moving)}"
    return f"it was at: {op.message or op.phase}"
