"""`schedule.put` / `schedule.remove`: schedules are kept in KV `schedules` (key = schedule
id, value = `ScheduleSpec`), so they survive restarts and every replica sees them.

A schedule that breaks `validate_schedule` is refused with a `PermanentError` naming each
field (the command is dead-lettered). A new schedule, a changed timing, or re-enabling
starts its cursor now: times before that are not runs of this schedule, never "missed".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from services.protection.schedules.scheduler import utc_now
from services.protection.state.tickets import RunLedger
from vessel.bus.errors import PermanentError
from vessel.bus.nats_port import Bus, KeyValue
from vessel.contracts import subjects
from vessel.contracts.protection import PutSchedule, RemoveSchedule, ScheduleSpec
from vessel.contracts.schedule_rules import cron_expression, validate_schedule

log = logging.getLogger("vessel.protection.schedules")


class ScheduleCommands:
    def __init__(
        self,
        bus: Bus,
        schedules: KeyValue,
        runs: KeyValue,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self.bus = bus
        self.schedules = schedules
        self.ledger = RunLedger(runs)
        self.now = now

    async def get(self, schedule_id: str) -> ScheduleSpec | None:
        entry = await self.schedules.get(schedule_id)
        if entry is None or not entry.value:
            return None
        return ScheduleSpec.model_validate_json(entry.value)

    async def on_put(self, cmd: PutSchedule) -> None:
        spec = cmd.schedule
        violations = validate_schedule(spec)
        if violations:
            raise PermanentError(
                f"schedule {spec.id} rejected: " + "; ".join(f"{f}: {m}" for f, m in violations)
            )
        old = await self.get(spec.id)
        restart = (
            old is None
            or not old.enabled
            or cron_expression(old) != cron_expression(spec)
            or await self.ledger.cursor(spec.id) is None
        )
        await self.schedules.put(spec.id, spec.model_dump_json().encode())
        if restart:
            await self.ledger.reset_cursor(spec.id, self.now())
        log.info("schedule %s of %s put by %s", spec.id, spec.app_id, cmd.requested_by)
        await self.bus.publish(subjects.SCHEDULE_CHANGED, spec, subject=f"/schedules/{spec.id}")

    async def on_remove(self, cmd: RemoveSchedule) -> None:
        spec = await self.get(cmd.schedule_id)
        if spec is None:
            return  # already removed (a repeated command)
        # Announce first: a crash before the delete repeats the announcement on redelivery
        # instead of losing it.
        await self.bus.publish(subjects.SCHEDULE_REMOVED, spec, subject=f"/schedules/{spec.id}")
        await self.schedules.delete(spec.id)
        await self.ledger.forget(spec.id)
        log.info("schedule %s removed by %s", spec.id, cmd.requested_by)
