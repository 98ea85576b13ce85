"""The scheduler over real NATS, with an injected clock so time moves without sleeping:
each due time fires exactly once across replicas and restarts, missed times are reported
once with a single catch-up run, and an in-place restore pauses the app's runs."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.protection.schedules.scheduler import Scheduler, due_times, pause_reason
from services.protection.schedules.tickets import run_operation_id
from services.protection.state.tickets import RunLedger, RunTicket
from vessel.bus.nats_port import Bus, KeyValue
from vessel.contracts import subjects
from vessel.contracts.commands import CreateBackup, DefineApp
from vessel.contracts.protection import ScheduleSpec
from vessel.contracts.subjects import Message
from vessel.contracts.verification import CreateVerification
from vessel.stopping import cancel_and_wait
from vessel_dev.rig.processes import NatsServer

pytestmark = pytest.mark.timeout(60)
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
COMMANDS_DURABLE = "tests-gateway-protection"
"""The commands stream is a work queue: one consumer per subject. Tests that read
protection's backup and restore commands share this durable (same subjects, same config)."""


@dataclass
class Clock:
    at: datetime

    def __call__(self) -> datetime:
        return self.at


@dataclass
class Tap:
    """Backup commands of one schedule, as they arrive from the commands stream."""

    schedule_id: str
    seen: list[CreateBackup] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def record(self, payload: Any) -> None:
        if isinstance(payload, CreateBackup) and payload.schedule == self.schedule_id:
            self.seen.append(payload)
            self.arrived.set()

    async def settle(self, count: int, quiet: float = 1.0) -> list[CreateBackup]:
        """The commands once `count` arrived and no more came for `quiet` seconds."""
        async with asyncio.timeout(10):
            while len(self.seen) < count:
                await self.arrived.wait()
                self.arrived.clear()
        await asyncio.sleep(quiet)
        return list(self.seen)


@dataclass
class Rig:
    bus: Bus
    schedules: KeyValue
    runs: KeyValue
    locks: KeyValue
    spec: ScheduleSpec
    tap: Tap
    clock: Clock
    started: datetime
    definitions: KeyValue

    def scheduler(self, bus: Bus | None = None) -> Scheduler:
        return Scheduler(
            bus or self.bus,
            self.schedules,
            self.runs,
            self.locks,
            grace=timedelta(seconds=60),
            now=self.clock,
            definitions=self.definitions,
        )

    async def events(self, message: Message) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []

        async def read() -> None:
            async for _, event in self.bus.tail(message.subject, since=self.started):
                if event.data.get("schedule_id") == self.spec.id:
                    found.append(event.data)

        try:
            await asyncio.wait_for(read(), timeout=1.0)
        except TimeoutError:
            pass
        return found


@pytest.fixture
async def replica(nats_server: NatsServer) -> AsyncIterator[Bus]:
    """A second protection replica's own connection to the same NATS."""
    other = Bus(source="/clusters/test/protection-2")
    await other.connect(nats_server.url, name="vessel-tests-replica")
    yield other
    await other.close()


@pytest.fixture
async def rig(bus: Bus) -> AsyncIterator[Rig]:
    suffix = uuid.uuid4().hex[:8]
    spec = ScheduleSpec(
        id=f"nightly-{suffix}",
        app_id=f"c1.ns-{suffix}.web",
        kind="backup",
        bucket="default",
        frequency="hourly",
    )
    schedules = await bus.kv(f"t_sched_{suffix}")
    await schedules.put(spec.id, spec.model_dump_json().encode())
    runs = await bus.kv(f"t_runs_{suffix}")
    await RunLedger(runs).reset_cursor(spec.id, T0 - timedelta(minutes=30))
    tap = Tap(spec.id)
    task = await bus.consume(
        COMMANDS_DURABLE, {subjects.CREATE_BACKUP: tap.record, subjects.CREATE_RESTORE: tap.record}
    )
    yield Rig(
        bus,
        schedules,
        runs,
        await bus.kv(f"t_locks_{suffix}"),
        spec,
        tap,
        Clock(T0 + timedelta(seconds=5)),
        datetime.now(UTC),
        await bus.kv(f"t_defs_{suffix}"),
    )
    task.cancel()


@pytest.mark.parametrize("value", [b"restore-42", b'{"operation_id": "restore-42"}'])
def test_pause_reason_names_the_restore(value: bytes) -> None:
    assert pause_reason(value) == "paused by in-place restore restore-42"


def test_due_times_are_the_cron_times_after_the_cursor_oldest_first() -> None:
    spec = ScheduleSpec(
        id="s", app_id="c.n.a", kind="backup", bucket="b", frequency="cron", cron="*/20 * * * *"
    )
    assert due_times(spec, T0, T0 + timedelta(hours=1)) == [
        T0 + timedelta(minutes=20),
        T0 + timedelta(minutes=40),
        T0 + timedelta(hours=1),
    ]
    assert due_times(spec, T0, T0 + timedelta(minutes=19, seconds=59)) == []


async def test_two_replicas_fire_a_due_time_exactly_once(rig: Rig, replica: Bus) -> None:
    a, b = rig.scheduler(), rig.scheduler(replica)
    await asyncio.gather(a.tick(), b.tick(), a.tick(), b.tick())

    (command,) = await rig.tap.settle(1)
    assert command.operation_id == run_operation_id(rig.spec.id, T0)
    assert (command.app_id, command.bucket) == (rig.spec.app_id, rig.spec.bucket)
    fired = await rig.events(subjects.SCHEDULE_FIRED)
    assert [(f["operation_id"], f["due"]) for f in fired] == [
        (command.operation_id, T0.isoformat().replace("+00:00", "Z"))
    ]
    assert await rig.events(subjects.RUN_MISSED) == []


async def test_restarted_scheduler_neither_refires_nor_loses_schedules(
    rig: Rig, replica: Bus
) -> None:
    await rig.scheduler().tick()
    await rig.tap.settle(1, quiet=0)
    rig.clock.at = T0 + timedelta(seconds=40)  # still within the grace of T0
    restarted = rig.scheduler(replica)  # a new process: nothing but what KV holds
    await restarted.tick()
    rig.clock.at = T0 + timedelta(hours=1, seconds=2)
    await restarted.tick()

    commands = await rig.tap.settle(2)
    assert [c.operation_id for c in commands] == [
        run_operation_id(rig.spec.id, T0),
        run_operation_id(rig.spec.id, T0 + timedelta(hours=1)),
    ]


async def test_missed_runs_are_reported_once_and_only_the_newest_is_caught_up(
    rig: Rig, replica: Bus
) -> None:
    rig.clock.at = T0 + timedelta(hours=4, minutes=10)  # down since before T0
    a, b = rig.scheduler(), rig.scheduler(replica)
    await asyncio.gather(a.tick(), b.tick())
    await asyncio.gather(a.tick(), b.tick())

    (catch_up,) = await rig.tap.settle(1)
    newest = T0 + timedelta(hours=4)
    assert catch_up.operation_id == run_operation_id(rig.spec.id, newest)
    missed = await rig.events(subjects.RUN_MISSED)
    assert sorted(datetime.fromisoformat(m["due"]) for m in missed) == [
        T0 + timedelta(hours=h) for h in range(5)
    ]
    assert all("within 60s" in m["reason"] for m in missed)
    assert len(await rig.events(subjects.SCHEDULE_FIRED)) == 1

    rig.clock.at = T0 + timedelta(hours=5, seconds=1)  # back to normal: on time, no report
    await a.tick()
    assert len(await rig.tap.settle(2)) == 2
    assert len(await rig.events(subjects.RUN_MISSED)) == 5


async def test_after_downtime_an_on_time_run_replaces_the_catch_up(rig: Rig) -> None:
    rig.clock.at = T0 + timedelta(hours=2, seconds=30)
    await rig.scheduler().tick()

    (command,) = await rig.tap.settle(1)
    assert command.operation_id == run_operation_id(rig.spec.id, T0 + timedelta(hours=2))
    missed = await rig.events(subjects.RUN_MISSED)
    assert sorted(datetime.fromisoformat(m["due"]) for m in missed) == [
        T0,
        T0 + timedelta(hours=1),
    ]


async def test_in_place_restore_pauses_the_apps_runs(rig: Rig) -> None:
    # As the in-place restore writes it: the restore's operation id.
    await rig.locks.put(f"inplace.{rig.spec.app_id}", b"restore-42")
    scheduler = rig.scheduler()
    await scheduler.tick()
    await scheduler.tick()

    (paused,) = await rig.events(subjects.RUN_MISSED)
    assert paused["reason"] == "paused by in-place restore restore-42"
    assert datetime.fromisoformat(paused["due"]) == T0
    await rig.locks.delete(f"inplace.{rig.spec.app_id}")
    rig.clock.at = T0 + timedelta(hours=1, seconds=1)
    await scheduler.tick()
    (command,) = await rig.tap.settle(1)  # the paused time is not run afterwards
    assert command.operation_id == run_operation_id(rig.spec.id, T0 + timedelta(hours=1))


async def test_an_unmanaged_app_s_runs_pause_until_it_is_managed_again(rig: Rig) -> None:
    cluster, namespace, name = rig.spec.app_id.split(".")
    unmanaged = DefineApp(
        operation_id="u-1", cluster=cluster, namespace=namespace, name=name, unmanaged=True
    )
    await rig.definitions.put(rig.spec.app_id, unmanaged.model_dump_json().encode())
    scheduler = rig.scheduler()
    await scheduler.tick()
    (paused,) = await rig.events(subjects.RUN_MISSED)
    assert paused["reason"] == "paused: the app is unmanaged (vessel app manage resumes it)"
    await rig.definitions.delete(rig.spec.app_id)  # managed again
    rig.clock.at = T0 + timedelta(hours=1, seconds=1)
    await scheduler.tick()
    (command,) = await rig.tap.settle(1)
    assert command.operation_id == run_operation_id(rig.spec.id, T0 + timedelta(hours=1))


async def test_disabled_schedules_do_not_fire(rig: Rig) -> None:
    disabled = rig.spec.model_copy(update={"enabled": False})
    await rig.schedules.put(rig.spec.id, disabled.model_dump_json().encode())
    await rig.scheduler().tick()
    await asyncio.sleep(1.0)
    assert rig.tap.seen == []
    assert await rig.events(subjects.RUN_MISSED) == []


async def test_a_verify_schedule_sends_a_verification_of_the_newest_backup(rig: Rig) -> None:
    spec = rig.spec.model_copy(update={"kind": "verify", "target_cluster": "c2"})
    await rig.schedules.put(rig.spec.id, spec.model_dump_json().encode())
    seen: list[CreateVerification] = []
    arrived = asyncio.Event()

    async def record(command: CreateVerification) -> None:
        if command.schedule == spec.id:
            seen.append(command)
            arrived.set()

    task = await rig.bus.consume(
        "tests-protection-verifications", {subjects.CREATE_VERIFICATION: record}
    )
    try:
        await rig.scheduler().tick()
        await asyncio.wait_for(arrived.wait(), 10)
    finally:
        await cancel_and_wait([task])
    (command,) = seen
    assert command == CreateVerification(
        operation_id=run_operation_id(spec.id, T0),
        app_id=spec.app_id,
        bucket=spec.bucket,
        schedule=spec.id,
        target_cluster="c2",
        requested_by=f"schedule/{spec.id}",
    )
    assert rig.tap.seen == []  # no backup


async def test_the_loop_wakes_every_second(rig: Rig) -> None:
    rig.clock.at = T0 - timedelta(seconds=1)
    loop = asyncio.create_task(rig.scheduler().run())
    try:
        await asyncio.sleep(1.2)
        assert rig.tap.seen == []
        rig.clock.at = T0 + timedelta(seconds=1)
        async with asyncio.timeout(3):
            await rig.tap.settle(1, quiet=0)
    finally:
        loop.cancel()
    assert rig.tap.seen[0].operation_id == run_operation_id(rig.spec.id, T0)


def test_run_ids_stay_valid_identifiers_for_the_longest_schedule_ids() -> None:
    long_id = "s" * 128
    first = run_operation_id(long_id, T0)
    assert (
        first == run_operation_id(long_id, T0) != run_operation_id(long_id, T0 + timedelta(hours=1))
    )
    assert len(first) <= 128 and first.endswith(str(int(T0.timestamp())))
    CreateBackup(operation_id=first, app_id="c.n.a", bucket="b")  # an Identifier
    assert run_operation_id("nightly", T0) == f"sched-nightly-{int(T0.timestamp())}"


async def test_a_claim_left_half_done_is_taken_over_once_it_is_stale(rig: Rig) -> None:
    ledger = RunLedger(rig.runs)
    half_done = RunTicket(
        schedule_id=rig.spec.id,
        due=T0,
        outcome="fired",
        operation_id=run_operation_id(rig.spec.id, T0),
        claimed_at=T0 + timedelta(seconds=1),
    )
    await ledger.take(half_done)  # its replica stopped before publishing the command
    scheduler = rig.scheduler()
    rig.clock.at = T0 + timedelta(seconds=10)
    await scheduler.tick()  # recent: its replica may still be publishing
    await asyncio.sleep(0.5)
    assert rig.tap.seen == []
    cursor = await ledger.cursor(rig.spec.id)
    assert cursor is not None and cursor[0].handled_until < T0  # waits for the claim

    rig.clock.at = T0 + timedelta(seconds=45)
    await scheduler.tick()
    await scheduler.tick()
    (command,) = await rig.tap.settle(1)
    assert command.operation_id == half_done.operation_id
    found = await ledger.get(rig.spec.id, T0)
    assert found is not None and found[0].done
    cursor = await ledger.cursor(rig.spec.id)
    assert cursor is not None and cursor[0].handled_until == T0


async def test_a_running_scheduler_follows_the_schedules_and_leaves_idle_ones_alone(
    rig: Rig,
) -> None:
    """Running, it knows the schedules from a watch of their bucket (one put meanwhile
    fires too) and, once a schedule's cursor is read, touches nothing of it before its next
    due time: the cursor removed meanwhile stays removed until then."""
    scheduler = rig.scheduler()
    scheduler.interval = 0.05
    running = asyncio.create_task(scheduler.run())
    try:
        (first,) = await rig.tap.settle(1)  # T0 was due
        assert first.operation_id == run_operation_id(rig.spec.id, T0)
        later = rig.spec.model_copy(update={"id": f"{rig.spec.id}-later"})
        await RunLedger(rig.runs).reset_cursor(later.id, T0)
        await rig.schedules.put(later.id, later.model_dump_json().encode())
        await rig.runs.delete(f"cursor.{rig.spec.id}")
        await asyncio.sleep(0.5)  # ten ticks before the next due time
        assert await RunLedger(rig.runs).cursor(rig.spec.id) is None
        rig.tap.schedule_id, rig.tap.seen = later.id, []
        rig.tap.arrived.clear()
        rig.clock.at = T0 + timedelta(hours=1, seconds=1)
        (fired,) = await rig.tap.settle(1)
        assert fired.operation_id == run_operation_id(later.id, T0 + timedelta(hours=1))
        # Due again, the first schedule's cursor is read: absent, it starts at that time.
        cursor = await RunLedger(rig.runs).cursor(rig.spec.id)
        assert cursor is not None and cursor[0].handled_until == rig.clock.at
    finally:
        await cancel_and_wait([running])
