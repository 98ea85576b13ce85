"""Starts schedules, retention and deletion inside the protection service: their command
and event consumers (each its own durable, so adding them never changes the filters of
consumers that exist) and the scheduler loop."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from services.protection.context import Protection
from services.protection.deletion import DeletionFlow
from services.protection.schedules.commands import ScheduleCommands
from services.protection.schedules.enforcement import RetentionEnforcer
from services.protection.schedules.scheduler import Scheduler
from vessel.contracts import subjects

SCHEDULES_KV, RUNS_KV, LOCKS_KV, APP_SNAPSHOTS_KV = (
    "schedules",
    "schedule_runs",
    "protection_locks",
    "app_snapshots",
)


async def start_schedules(p: Protection, grace_seconds: float) -> list[asyncio.Task[None]]:
    bus = p.bus
    schedules, runs = await bus.kv(SCHEDULES_KV), await bus.kv(RUNS_KV)
    commands = ScheduleCommands(bus, schedules, runs)
    deletion = DeletionFlow(p, await bus.kv(APP_SNAPSHOTS_KV))
    retention = RetentionEnforcer(bus, p.operations, schedules, runs)
    scheduler = Scheduler(
        bus, schedules, runs, await bus.kv(LOCKS_KV), grace=timedelta(seconds=grace_seconds)
    )
    return [
        await bus.consume(
            "protection-schedules",
            {subjects.PUT_SCHEDULE: commands.on_put, subjects.REMOVE_SCHEDULE: commands.on_remove},
        ),
        await bus.consume(
            "protection-deletion",
            {
                subjects.DELETE_BACKUP: deletion.on_delete_backup,
                subjects.DELETE_SNAPSHOT: deletion.on_delete_snapshot,
            },
        ),
        await bus.consume(
            "protection-retention",
            {
                subjects.BACKUP_COMPLETED: retention.on_run_ended,
                subjects.BACKUP_FAILED: retention.on_run_ended,
                subjects.SNAPSHOT_COMPLETED: retention.on_run_ended,
                subjects.SNAPSHOT_FAILED: retention.on_run_ended,
                subjects.SNAPSHOTS_FORGOTTEN: deletion.on_forgotten,
            },
            deliver_new=True,
        ),
        asyncio.create_task(scheduler.run(), name="protection-scheduler"),
    ]
