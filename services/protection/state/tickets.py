"""KV `schedule_runs`: one run ticket per due time and one cursor per schedule.

- `runs.<schedule>.<due-epoch>`: a `RunTicket`, created with an atomic KV `create`, so of
  any number of replicas exactly one decides what happens to a due time (fired, missed,
  caught up, paused). The tickets of a schedule are also its run index: retention reads
  them to find the schedule's runs and marks the ones it deletes.
- `cursor.<schedule>`: a `Cursor`; due times at or before it have been handled, so the
  scheduler never looks at them again (nor reports them missed).

(A ticket was called a "claim" before; stored field names are kept, so tickets written
then are still read.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from vessel.bus.errors import KeyExistsError
from vessel.bus.nats_port import KeyValue

Outcome = Literal["fired", "caught-up", "missed", "paused"]


class RunTicket(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schedule_id: str
    due: datetime
    outcome: Outcome
    operation_id: str = ""
    """The run's operation, when the ticket started one (fired, caught-up)."""
    reason: str = ""
    claimed_at: datetime | None = None
    """When a replica took the ticket (or took it over)."""
    done: bool = False
    """Everything the ticket decided was published; until then another replica may take
    the ticket over once it is stale (its replica stopped half-way)."""
    deleted_by: str = ""
    """The deletion operation retention started for this run."""


class Cursor(BaseModel):
    model_config = ConfigDict(extra="forbid")
    handled_until: datetime


def run_key(schedule_id: str, due: datetime) -> str:
    return f"runs.{schedule_id}.{int(due.timestamp())}"


def cursor_key(schedule_id: str) -> str:
    return f"cursor.{schedule_id}"


class RunLedger:
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def take(self, ticket: RunTicket) -> int | None:
        """The ticket's revision for the one caller that took this due time first, else
        None."""
        try:
            return await self.kv.create(
                run_key(ticket.schedule_id, ticket.due), ticket.model_dump_json().encode()
            )
        except KeyExistsError:
            return None

    async def get(self, schedule_id: str, due: datetime) -> tuple[RunTicket, int] | None:
        entry = await self.kv.get(run_key(schedule_id, due))
        if entry is None or not entry.value:
            return None
        return RunTicket.model_validate_json(entry.value), entry.revision

    async def replace(self, ticket: RunTicket, revision: int) -> int | None:
        """Compare-and-set; None when someone changed the ticket since `revision`."""
        try:
            return await self.kv.update(
                run_key(ticket.schedule_id, ticket.due),
                ticket.model_dump_json().encode(),
                revision,
            )
        except KeyExistsError:
            return None

    async def cursor(self, schedule_id: str) -> tuple[Cursor, int] | None:
        entry = await self.kv.get(cursor_key(schedule_id))
        if entry is None or not entry.value:
            return None
        return Cursor.model_validate_json(entry.value), entry.revision

    async def start_cursor(self, schedule_id: str, at: datetime) -> None:
        """Due times from `at` on are this schedule's (kept if it already has a cursor)."""
        try:
            await self.kv.create(
                cursor_key(schedule_id), Cursor(handled_until=at).model_dump_json().encode()
            )
        except KeyExistsError:
            pass

    async def reset_cursor(self, schedule_id: str, at: datetime) -> None:
        await self.kv.put(
            cursor_key(schedule_id), Cursor(handled_until=at).model_dump_json().encode()
        )

    async def advance(self, schedule_id: str, to: datetime, revision: int) -> None:
        """Move the cursor forward; losing the race to another replica is fine (it moved it)."""
        try:
            await self.kv.update(
                cursor_key(schedule_id),
                Cursor(handled_until=to).model_dump_json().encode(),
                revision,
            )
        except KeyExistsError:
            pass

    async def forget(self, schedule_id: str) -> None:
        await self.kv.delete(cursor_key(schedule_id))

    async def tickets(self, schedule_id: str) -> list[tuple[RunTicket, int]]:
        """Every ticket of one schedule with its revision, oldest first."""
        found = []
        for key in await self.kv.keys():
            head, _, epoch = key.rpartition(".")
            if head != f"runs.{schedule_id}" or not epoch.isdigit():
                continue
            entry = await self.kv.get(key)
            if entry is not None and entry.value:
                found.append((RunTicket.model_validate_json(entry.value), entry.revision))
        return sorted(found, key=lambda t: t[0].due)

    async def mark_deleted(self, ticket: RunTicket, revision: int, deletion_id: str) -> None:
        # None: marked concurrently by another replica enforcing the same schedule.
        await self.replace(ticket.model_copy(update={"deleted_by": deletion_id}), revision)
