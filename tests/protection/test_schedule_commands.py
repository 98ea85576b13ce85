"""Schedule commands over real NATS: a valid schedule is stored in KV and announced, an
invalid one is refused naming the field, removal is announced once and is idempotent."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.protection.schedules.commands import ScheduleCommands
from services.protection.state.tickets import RunLedger
from vessel.bus.errors import PermanentError
from vessel.bus.nats_port import Bus
from vessel.contracts import subjects
from vessel.contracts.protection import PutSchedule, RemoveSchedule, Retention, ScheduleSpec
from vessel.contracts.schedule_rules import cron_expression, validate_schedule
from vessel.contracts.subjects import Message

pytestmark = pytest.mark.timeout(60)
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def spec(**fields: Any) -> ScheduleSpec:
    base: dict[str, Any] = {
        "id": f"s-{uuid.uuid4().hex[:8]}",
        "app_id": "c1.shop.web",
        "kind": "backup",
        "bucket": "default",
        "frequency": "hourly",
    }
    return ScheduleSpec.model_validate(base | fields)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"frequency": "cron", "cron": "*/15 * * * *"}, []),
        ({"frequency": "daily", "hour": 3}, []),
        ({"frequency": "cron", "cron": ""}, ["schedule.cron"]),
        ({"frequency": "cron", "cron": "61 * * * *"}, ["schedule.cron"]),
        ({"frequency": "cron", "cron": "0 * * *"}, ["schedule.cron"]),
        ({"frequency": "cron", "cron": "0 0 * * * *"}, ["schedule.cron"]),
        ({"frequency": "cron", "cron": "@hourly"}, ["schedule.cron"]),
        ({"frequency": "cron", "cron": "0 0 30 2 *"}, ["schedule.cron"]),
        ({"frequency": "daily", "cron": "0 * * * *"}, ["schedule.cron"]),
        ({"retention": Retention(floor=0)}, ["schedule.retention"]),
        ({"retention": Retention(weekly=2, floor=0)}, []),
        (
            {"frequency": "cron", "cron": "bad", "retention": Retention(floor=0)},
            ["schedule.cron", "schedule.retention"],
        ),
    ],
)
def test_validate_schedule_names_each_field(fields: dict[str, Any], expected: list[str]) -> None:
    violations = validate_schedule(spec(**fields))
    assert [field for field, _ in violations] == expected
    assert all(message for _, message in violations)


@pytest.mark.parametrize(
    ("fields", "expression"),
    [
        ({"frequency": "hourly", "minute": 5}, "5 * * * *"),
        ({"frequency": "daily", "minute": 30, "hour": 2}, "30 2 * * *"),
        ({"frequency": "weekly", "hour": 1, "day_of_week": 6}, "0 1 * * 6"),
        ({"frequency": "monthly", "hour": 4, "day_of_month": 28}, "0 4 28 * *"),
        ({"frequency": "cron", "cron": " */10 * * * 1-5 "}, "*/10 * * * 1-5"),
    ],
)
def test_named_frequencies_are_cron_expressions(fields: dict[str, Any], expression: str) -> None:
    assert cron_expression(spec(**fields)) == expression


async def events_of(bus: Bus, message: Message, since: datetime, schedule_id: str) -> list[Any]:
    """Every event of one kind about one schedule since `since` (waits for quiet)."""
    found: list[Any] = []

    async def read() -> None:
        async for _, event in bus.tail(message.subject, since=since):
            if event.data.get("id", event.data.get("schedule_id")) == schedule_id:
                found.append(event.data)

    try:
        await asyncio.wait_for(read(), timeout=1.5)
    except TimeoutError:
        pass
    return found


@pytest.fixture
async def commands(bus: Bus) -> ScheduleCommands:
    suffix = uuid.uuid4().hex[:8]
    return ScheduleCommands(
        bus, await bus.kv(f"t_sched_{suffix}"), await bus.kv(f"t_runs_{suffix}"), now=lambda: T0
    )


async def test_put_stores_announces_and_starts_the_cursor(
    bus: Bus, commands: ScheduleCommands
) -> None:
    since = datetime.now(UTC)
    schedule = spec(frequency="cron", cron="*/5 * * * *", retention=Retention(daily=7, floor=3))
    await commands.on_put(PutSchedule(operation_id="op-1", schedule=schedule))

    assert await commands.get(schedule.id) == schedule
    cursor = await RunLedger(commands.ledger.kv).cursor(schedule.id)
    assert cursor is not None and cursor[0].handled_until == T0
    announced = await events_of(bus, subjects.SCHEDULE_CHANGED, since, schedule.id)
    assert [ScheduleSpec.model_validate(a) for a in announced] == [schedule]


async def test_replacing_retention_keeps_the_cursor_changing_timing_restarts_it(
    commands: ScheduleCommands,
) -> None:
    schedule = spec()
    await commands.on_put(PutSchedule(operation_id="op-1", schedule=schedule))
    later = T0 + timedelta(hours=3)
    commands.now = lambda: later
    await commands.on_put(
        PutSchedule(
            operation_id="op-2", schedule=schedule.model_copy(update={"retention": Retention()})
        )
    )
    cursor = await commands.ledger.cursor(schedule.id)
    assert cursor is not None and cursor[0].handled_until == T0
    await commands.on_put(
        PutSchedule(operation_id="op-3", schedule=schedule.model_copy(update={"minute": 30}))
    )
    cursor = await commands.ledger.cursor(schedule.id)
    assert cursor is not None and cursor[0].handled_until == later


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"frequency": "cron", "cron": "0 25 * * *"}, "schedule.cron"),
        ({"retention": Retention(floor=0)}, "schedule.retention"),
    ],
)
async def test_invalid_schedule_is_refused_permanently_naming_the_field(
    commands: ScheduleCommands, fields: dict[str, Any], field: str
) -> None:
    schedule = spec(**fields)
    with pytest.raises(PermanentError, match=field):
        await commands.on_put(PutSchedule(operation_id="op-1", schedule=schedule))
    assert await commands.get(schedule.id) is None


async def test_remove_announces_once_and_repeats_quietly(
    bus: Bus, commands: ScheduleCommands
) -> None:
    schedule = spec()
    await commands.on_put(PutSchedule(operation_id="op-1", schedule=schedule))
    since = datetime.now(UTC)
    remove = RemoveSchedule(operation_id="op-2", schedule_id=schedule.id)
    await commands.on_remove(remove)
    await commands.on_remove(remove)

    assert await commands.get(schedule.id) is None
    assert await commands.ledger.cursor(schedule.id) is None
    assert len(await events_of(bus, subjects.SCHEDULE_REMOVED, since, schedule.id)) == 1
