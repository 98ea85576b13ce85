"""The scheduler loop: every second it looks at each enabled schedule's due times since its
cursor and settles each one exactly once across all protection replicas (the run ticket
taken atomically in `schedule_runs`).

A due time within the grace period starts its run. A due time found later than that was
missed (no replica was running): it is reported with `protection.run.missed`, and only the
newest missed time of a schedule runs, once, as a catch-up, never a burst. While an
in-place restore of the app holds `inplace.<app>` in `protection_locks`, or the app is
unmanaged (`vessel app unmanage`, kept in discovery's `app-definitions`), due times are
not run; they are reported missed with the restore's operation id, or as unmanaged.

A ticket is marked done once what it decided is published; one left unfinished by a
replica that stopped is taken over after `STALE_TICKET`, and the cursor never passes it
before that, so no run is lost between taking the ticket and publishing.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial

from croniter import croniter
from pydantic import ValidationError

from services.protection.schedules.intervals import IntervalGauges
from services.protection.schedules.tickets import run_operation_id
from services.protection.state.locks import InPlaceLocks
from services.protection.state.tickets import Outcome, RunLedger, RunTicket
from vessel.bus.nats_port import Bus, KeyValue
from vessel.contracts import subjects
from vessel.contracts.commands import CreateBackup, DefineApp
from vessel.contracts.protection import CreateAppSnapshot, RunMissed, ScheduleFired, ScheduleSpec
from vessel.contracts.schedule_rules import cron_expression
from vessel.contracts.verification import CreateVerification
from vessel.stopping import cancel_and_wait

log = logging.getLogger("vessel.protection.scheduler")
Clock = Callable[[], datetime]
STALE_TICKET = timedelta(seconds=30)
"""A ticket not finished after this long belongs to a replica that stopped half-way."""
MAX_BACKLOG = 500
"""Most due times looked at per schedule and tick; older ones after a long outage are
skipped (logged), so a minute schedule after a month down costs no burst of work."""
CONCURRENCY = 128
"""Schedules settled at once by a tick."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def due_times(spec: ScheduleSpec, after: datetime, until: datetime) -> list[datetime]:
    """Due times in (after, until], oldest first, at most the newest MAX_BACKLOG."""
    found: list[datetime] = []
    cron = croniter(cron_expression(spec), until + timedelta(seconds=1))
    while len(found) < MAX_BACKLOG:
        due = cron.get_prev(datetime)
        if due <= after:
            break
        if due <= until:
            found.append(due)
    else:
        log.warning("schedule %s: more than %d due times missed", spec.id, MAX_BACKLOG)
    return found[::-1]


def _parse(key: str, value: bytes) -> ScheduleSpec | None:
    try:
        return ScheduleSpec.model_validate_json(value)
    except ValidationError as exc:
        log.error("schedule %s is unreadable, skipped: %s", key, exc.errors()[0]["msg"])
        return None


def pause_reason(value: bytes) -> str:
    """The reason for a run paused by `inplace.<app>`, naming the restore's operation."""
    text = value.decode(errors="replace").strip()
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        text = str(doc.get("operation_id") or doc.get("operation") or doc.get("id") or "")
    return f"paused by in-place restore {text or 'of this app'}"


class Scheduler:
    def __init__(
        self,
        bus: Bus,
        schedules: KeyValue,
        runs: KeyValue,
        locks: KeyValue,
        *,
        grace: timedelta = timedelta(seconds=60),
        now: Clock = utc_now,
        interval: float = 1.0,
        definitions: KeyValue | None = None,
    ) -> None:
        """`definitions`: discovery's KV `app-definitions`, where an unmanaged app's
        decision is kept (its runs pause); None: no app is unmanaged."""
        self.bus, self.definitions = bus, definitions
        self.schedules = schedules
        self.ledger = RunLedger(runs)
        self.locks = InPlaceLocks(locks)
        self.grace = grace
        self.now = now
        self.interval = interval
        self.intervals = IntervalGauges()
        self.specs: dict[str, ScheduleSpec] | None = None
        """Every schedule as KV holds it, while `run` follows the bucket; None: read each
        tick."""
        self.idle_until: dict[str, tuple[str, datetime]] = {}
        """Schedule id -> (its cron expression, its next due time after its cursor as last
        read): nothing to do before then. Cursors only move forward, so a stale entry only
        costs a read."""

    async def run(self) -> None:
        follower = asyncio.create_task(self._follow(), name="follow schedules")
        try:
            while True:
                try:
                    await self.tick()
                except Exception:  # NATS away for a moment: the next tick tries again
                    log.exception("scheduler tick failed")
                await asyncio.sleep(self.interval)
        finally:
            await cancel_and_wait([follower])

    async def _follow(self) -> None:
        """Keep `specs` as KV holds them (a watch), so a tick reads no schedule; after a
        lost watch, ticks read them again until it is back."""
        while True:
            specs: dict[str, ScheduleSpec] = {}
            try:
                async for key, value in self.schedules.watch(current=partial(self._use, specs)):
                    spec = _parse(key, value) if value else None
                    if spec is None:
                        specs.pop(key, None)
                    else:
                        specs[key] = spec
            except Exception:
                log.warning("schedule watch lost; reading schedules each tick meanwhile")
            self.specs = None
            await asyncio.sleep(self.interval)

    def _use(self, specs: dict[str, ScheduleSpec]) -> None:
        self.specs = specs

    async def _read_specs(self) -> list[ScheduleSpec]:
        found = []
        for key in await self.schedules.keys():
            entry = await self.schedules.get(key)
            if entry is not None and entry.value and (spec := _parse(key, entry.value)):
                found.append(spec)
        return found

    async def tick(self) -> None:
        """Settle every schedule with a due time, `CONCURRENCY` at a time: each is a
        handful of KV round trips, so thousands due in one minute would fire seconds late
        one after another; one with none costs no round trip. Schedules share no keys; a
        failure fails the tick once all have been tried."""
        now = self.now()
        gate = asyncio.Semaphore(CONCURRENCY)
        specs = list(self.specs.values()) if self.specs is not None else await self._read_specs()
        self.intervals.report(specs, now)

        async def settle(spec: ScheduleSpec) -> None:
            idle = self.idle_until.get(spec.id)
            if idle is not None and idle[0] == cron_expression(spec) and now < idle[1]:
                return
            async with gate:
                await self._settle(spec, now)

        enabled = [s for s in specs if s.enabled]
        for outcome in await asyncio.gather(*map(settle, enabled), return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome

    def _idle(self, spec: ScheduleSpec, handled_until: datetime) -> None:
        expression = cron_expression(spec)
        following = croniter(expression, handled_until).get_next(datetime)
        self.idle_until[spec.id] = (expression, following)

    async def _unmanaged(self, app_id: str) -> str:
        """Why the app's runs pause when it is unmanaged, else ""."""
        entry = await self.definitions.get(app_id) if self.definitions is not None else None
        if entry is None or not entry.value:
            return ""
        try:
            unmanaged = DefineApp.model_validate_json(entry.value).unmanaged
        except ValidationError:
            return ""
        return "paused: the app is unmanaged (vessel app manage resumes it)" if unmanaged else ""

    async def _settle(self, spec: ScheduleSpec, now: datetime) -> None:
        cursor = await self.ledger.cursor(spec.id)
        if cursor is None:  # written before it had a cursor: its times start now
            await self.ledger.start_cursor(spec.id, now)
            return
        position, revision = cursor
        dues = due_times(spec, position.handled_until, now)
        if not dues:
            self._idle(spec, position.handled_until)
            return
        late = [d for d in dues if now - d > self.grace]
        catch_up = late[-1] if late and len(late) == len(dues) else None
        lock = await self.locks.value(spec.app_id)
        paused = pause_reason(lock) if lock is not None else await self._unmanaged(spec.app_id)
        settled = position.handled_until
        pending = False  # a ticket still being published: the cursor waits for it
        for due in dues:
            outcome: Outcome
            reason = paused
            if paused:
                outcome = "paused"
            elif due in late:
                outcome = "caught-up" if due == catch_up else "missed"
                reason = f"no protection replica ran it within {self.grace.total_seconds():g}s"
            else:
                outcome = "fired"
            starts = outcome in ("fired", "caught-up")
            ticket = RunTicket(
                schedule_id=spec.id,
                due=due,
                outcome=outcome,
                operation_id=run_operation_id(spec.id, due) if starts else "",
                reason=reason,
                claimed_at=now,
            )
            won = await self.ledger.take(ticket)
            if won is None:
                taken = await self._take_over(spec.id, due, now)
                if taken is None:
                    pending = pending or not await self._is_done(spec.id, due)
                    settled = due if not pending else settled
                    continue
                ticket, won = taken
            await self._announce(spec, ticket, now)
            await self.ledger.replace(ticket.model_copy(update={"done": True}), won)
            settled = due if not pending else settled
        if settled > position.handled_until:
            await self.ledger.advance(spec.id, settled, revision)
        if not pending:
            self._idle(spec, settled)

    async def _is_done(self, schedule_id: str, due: datetime) -> bool:
        found = await self.ledger.get(schedule_id, due)
        return found is None or found[0].done

    async def _take_over(
        self, schedule_id: str, due: datetime, now: datetime
    ) -> tuple[RunTicket, int] | None:
        """A ticket whose replica stopped before publishing what it decided, now ours."""
        found = await self.ledger.get(schedule_id, due)
        if found is None or found[0].done:
            return None
        ticket, revision = found
        if ticket.claimed_at is not None and now - ticket.claimed_at < STALE_TICKET:
            return None  # its replica is probably publishing right now
        ticket = ticket.model_copy(update={"claimed_at": now})
        won = await self.ledger.replace(ticket, revision)
        if won is None:
            return None
        log.warning("schedule %s: took over the unfinished ticket of %s", schedule_id, due)
        return ticket, won

    async def _announce(self, spec: ScheduleSpec, ticket: RunTicket, now: datetime) -> None:
        if ticket.outcome != "fired":
            await self.bus.publish(
                subjects.RUN_MISSED,
                RunMissed(
                    schedule_id=spec.id,
                    app_id=spec.app_id,
                    due=ticket.due,
                    detected=now,
                    reason=ticket.reason,
                ),
            )
        if ticket.outcome in ("fired", "caught-up"):
            await self._start(spec, ticket)

    async def _start(self, spec: ScheduleSpec, ticket: RunTicket) -> None:
        op_id, by = ticket.operation_id, f"schedule/{spec.id}"
        if spec.kind == "backup":
            await self.bus.publish(
                subjects.CREATE_BACKUP,
                CreateBackup(
                    operation_id=op_id,
                    app_id=spec.app_id,
                    bucket=spec.bucket,
                    schedule=spec.id,
                    requested_by=by,
                ),
            )
        elif spec.kind == "verify":
            await self.bus.publish(
                subjects.CREATE_VERIFICATION,
                CreateVerification(
                    operation_id=op_id,
                    app_id=spec.app_id,
                    bucket=spec.bucket,
                    schedule=spec.id,
                    target_cluster=spec.target_cluster,
                    requested_by=by,
                ),
            )
        else:
            await self.bus.publish(
                subjects.CREATE_SNAPSHOT,
                CreateAppSnapshot(
                    operation_id=op_id,
                    app_id=spec.app_id,
                    bucket=spec.bucket,
                    schedule=spec.id,
                    requested_by=by,
                ),
            )
        log.info("schedule %s: %s run %s for %s", spec.id, ticket.outcome, op_id, ticket.due)
        await self.bus.publish(
            subjects.SCHEDULE_FIRED,
            ScheduleFired(
                schedule_id=spec.id, app_id=spec.app_id, due=ticket.due, operation_id=op_id
            ),
        )
