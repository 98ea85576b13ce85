"""Retention after a scheduled run ends, over real NATS: the schedule's runs come from its
claims and operations, and what its retention does not keep is deleted by command, once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest

from services.protection.schedules.enforcement import RetentionEnforcer
from services.protection.schedules.tickets import derived_id
from services.protection.state.operations import OperationStore
from services.protection.state.tickets import RunLedger, RunTicket
from vessel.bus.nats_port import Bus, KeyValue
from vessel.contracts import subjects
from vessel.contracts.events import AppSnapshotEvent, BackupEvent
from vessel.contracts.operations import Operation, Phase
from vessel.contracts.protection import DeleteAppSnapshot, DeleteBackup, Retention, ScheduleSpec
from vessel.contracts.verification import VerificationRecord

pytestmark = pytest.mark.timeout(60)
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@dataclass
class Deletions:
    schedule_id: str
    seen: list[DeleteBackup | DeleteAppSnapshot] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def record(self, payload: Any) -> None:
        if payload.requested_by == f"schedule/{self.schedule_id}":
            self.seen.append(payload)
            self.arrived.set()

    async def settle(self, count: int) -> list[DeleteBackup | DeleteAppSnapshot]:
        async with asyncio.timeout(10):
            while len(self.seen) < count:
                await self.arrived.wait()
                self.arrived.clear()
        await asyncio.sleep(1.0)
        return sorted(self.seen, key=lambda d: d.operation_id)


@dataclass
class World:
    enforcer: RetentionEnforcer
    operations: OperationStore
    schedules: KeyValue
    ledger: RunLedger
    deletions: Deletions
    spec: ScheduleSpec
    verifications: KeyValue

    async def run(self, hour: int, phase: Phase, kind: Literal["backup", "snapshot"]) -> str:
        """A run of the schedule `hour` hours after T0, its claim and its operation."""
        op_id = f"{self.spec.id}-run{hour}"
        due = T0 + timedelta(hours=hour)
        await self.ledger.take(
            RunTicket(schedule_id=self.spec.id, due=due, outcome="fired", operation_id=op_id)
        )
        await self.operations.create(
            Operation(
                id=op_id,
                kind=kind,
                phase=phase,
                app_id=self.spec.app_id,
                bucket=self.spec.bucket,
                schedule=self.spec.id,
                backup_id=op_id if kind == "backup" else "",
                snapshot_id=op_id if kind == "snapshot" else "",
            )
        )
        return op_id


async def make_world(
    bus: Bus, kind: Literal["backup", "snapshot"], retention: Retention | None = None
) -> World:
    suffix = uuid.uuid4().hex[:8]
    spec = ScheduleSpec(
        id=f"s-{suffix}",
        app_id=f"c1.ns-{suffix}.web",
        kind=kind,
        bucket="default",
        frequency="hourly",
        retention=retention or Retention(floor=2),
    )
    schedules = await bus.kv(f"t_sched_{suffix}")
    await schedules.put(spec.id, spec.model_dump_json().encode())
    operations = OperationStore(await bus.kv(f"t_ops_{suffix}"))
    runs = await bus.kv(f"t_runs_{suffix}")
    verifications = await bus.kv(f"t_verified_{suffix}")
    return World(
        RetentionEnforcer(bus, operations, schedules, runs, verifications),
        operations,
        schedules,
        RunLedger(runs),
        Deletions(spec.id),
        spec,
        verifications,
    )


@pytest.fixture
async def deletions_tap(bus: Bus) -> AsyncIterator[list[Deletions]]:
    """Routes delete commands on the bus to the test's `Deletions`."""
    taps: list[Deletions] = []

    async def route(payload: Any) -> None:
        for tap in taps:
            await tap.record(payload)

    task = await bus.consume(
        "tests-protection-deletions",
        {subjects.DELETE_BACKUP: route, subjects.DELETE_SNAPSHOT: route},
    )
    yield taps
    task.cancel()


async def test_a_finished_run_deletes_what_retention_does_not_keep_once(
    bus: Bus, deletions_tap: list[Deletions]
) -> None:
    world = await make_world(bus, "backup")
    deletions_tap.append(world.deletions)
    oldest = await world.run(0, "Completed", "backup")
    failed = await world.run(1, "Failed", "backup")
    await world.run(2, "Completed", "backup")
    newest = await world.run(3, "Completed", "backup")
    await world.run(4, "InProgress", "backup")  # never deleted while it runs
    event = BackupEvent(
        backup_id=newest, operation_id=newest, app_id=world.spec.app_id, bucket="default"
    )

    await world.enforcer.on_run_ended(event)
    await world.enforcer.on_run_ended(event)  # redelivered / a second replica: no new deletes

    commands = await world.deletions.settle(2)
    assert commands == [
        DeleteBackup(
            operation_id=derived_id(oldest, "delete"),
            backup_id=oldest,
            bucket="default",
            requested_by=f"schedule/{world.spec.id}",
        ),
        DeleteBackup(
            operation_id=derived_id(failed, "delete"),
            backup_id=failed,
            bucket="default",
            requested_by=f"schedule/{world.spec.id}",
        ),
    ]
    marked = {c.operation_id: c.deleted_by for c, _ in await world.ledger.tickets(world.spec.id)}
    assert marked[oldest] == derived_id(oldest, "delete")
    assert [k for k, v in marked.items() if not v] == [f"{world.spec.id}-run{h}" for h in (2, 3, 4)]


async def test_snapshot_schedules_delete_app_snapshots(
    bus: Bus, deletions_tap: list[Deletions]
) -> None:
    world = await make_world(bus, "snapshot")
    deletions_tap.append(world.deletions)
    runs = [await world.run(h, "Completed", "snapshot") for h in range(4)]
    await world.enforcer.on_run_ended(
        AppSnapshotEvent(snapshot_id=runs[-1], operation_id=runs[-1], app_id=world.spec.app_id)
    )
    commands = await world.deletions.settle(2)
    assert [(type(c), c.operation_id) for c in commands] == [
        (DeleteAppSnapshot, derived_id(runs[0], "delete")),
        (DeleteAppSnapshot, derived_id(runs[1], "delete")),
    ]


async def test_unscheduled_runs_and_removed_schedules_delete_nothing(
    bus: Bus, deletions_tap: list[Deletions]
) -> None:
    world = await make_world(bus, "backup")
    deletions_tap.append(world.deletions)
    for hour in range(3):
        await world.run(hour, "Completed", "backup")
    manual = Operation(id=f"manual-{world.spec.id}", kind="backup", phase="Completed")
    await world.operations.create(manual)
    await world.enforcer.on_run_ended(
        BackupEvent(backup_id=manual.id, operation_id=manual.id, app_id="", bucket="default")
    )
    await world.schedules.delete(world.spec.id)
    assert await world.enforcer.enforce(world.spec.id) == []
    await asyncio.sleep(1.0)
    assert world.deletions.seen == []


async def test_the_verified_floor_keeps_the_newest_verified_backups(
    bus: Bus, deletions_tap: list[Deletions]
) -> None:
    world = await make_world(bus, "backup", Retention(floor=1, floor_verified=1))
    deletions_tap.append(world.deletions)
    runs = [await world.run(h, "Completed", "backup") for h in range(4)]
    for run_id, outcome in [(runs[0], "Passed"), (runs[1], "Passed"), (runs[2], "Failed")]:
        record = VerificationRecord(
            bucket="default",
            backup_id=run_id,
            app_id=world.spec.app_id,
            operation_id=f"verify-{run_id}",
            outcome=outcome,
            verified_at=T0,
        )
        await world.verifications.put(f"default.{run_id}", record.model_dump_json().encode())
    await world.enforcer.on_run_ended(
        BackupEvent(
            backup_id=runs[3], operation_id=runs[3], app_id=world.spec.app_id, bucket="default"
        )
    )
    commands = await world.deletions.settle(2)
    # kept: the newest (floor 1) and the newest that passed verification (runs[1])
    assert [c.operation_id for c in commands] == [
        derived_id(runs[0], "delete"),
        derived_id(runs[2], "delete"),
    ]
