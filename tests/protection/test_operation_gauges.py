"""Operations as gauges, from a watch of their KV bucket: counts by kind and phase, and the
age of the oldest one not ended (0 once none runs), which the chart's alert watches."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from services.protection.operation_gauges import OperationGauges
from services.protection.schedules.intervals import IntervalGauges
from vessel.bus.nats_port import Bus
from vessel.contracts.operations import Operation, Phase
from vessel.contracts.protection import ScheduleSpec
from vessel.stopping import cancel_and_wait

pytestmark = pytest.mark.timeout(30)


def gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_gauges_follow_the_operations_bucket(bus: Bus) -> None:
    kv = await bus.kv(f"t_ops_{uuid.uuid4().hex[:8]}")
    kind = "delete-snapshot"  # a kind no other test here runs: the gauges are this test's
    stuck = Operation(
        id="op-stuck", kind=kind, phase=Phase.IN_PROGRESS,
        created=datetime.now(UTC) - timedelta(hours=2),
    )  # fmt: skip
    ended = Operation(id="op-ended", kind=kind, phase=Phase.COMPLETED)
    for op in (stuck, ended):
        await kv.put(op.id, op.model_dump_json().encode())
    await kv.put("not-an-operation", b"{}")
    gauges = OperationGauges(kv, interval=0.05)
    running = asyncio.create_task(gauges.run())
    try:
        oldest = "vessel_protection_operation_oldest_running_seconds"
        for _ in range(100):
            if (gauge(oldest, kind=kind) or 0) > 0:
                break
            await asyncio.sleep(0.05)
        assert 7190 < (gauge(oldest, kind=kind) or 0) < 7300
        counted = "vessel_protection_operations_in_phase"
        assert gauge(counted, kind=kind, phase="InProgress") == 1
        assert gauge(counted, kind=kind, phase="Completed") == 1
        stuck.phase = Phase.FAILED
        await kv.put(stuck.id, stuck.model_dump_json().encode())
        for _ in range(100):
            if gauge(oldest, kind=kind) == 0:
                break
            await asyncio.sleep(0.05)
        assert gauge(oldest, kind=kind) == 0
        assert gauge(counted, kind=kind, phase="InProgress") == 0
        assert gauge(counted, kind=kind, phase="Failed") == 1
    finally:
        await cancel_and_wait([running])


def test_each_app_s_last_good_run_is_kept_past_its_record_and_each_schedule_s_interval() -> None:
    """The two sides of the chart's `VesselProtectionOverdue`: when an app's newest
    completed backup (or snapshot) ended, and how often its schedule runs."""
    app = f"c.ns.app-{uuid.uuid4().hex[:6]}"
    gauges = OperationGauges(None, interval=1)  # type: ignore[arg-type]  # fed by hand
    day = datetime(2026, 12, 1, tzinfo=UTC)

    def ended(op_id: str, phase: Phase, at: datetime, kind: str = "backup") -> None:
        op = Operation(id=op_id, kind=kind, phase=phase, app_id=app, updated=at)
        gauges.note(op_id, op.model_dump_json().encode())

    ended("b1", Phase.COMPLETED, day)
    ended("b2", Phase.COMPLETED, day + timedelta(days=1))
    ended("b3", Phase.FAILED, day + timedelta(days=2))  # not a good one
    ended("s1", Phase.COMPLETED, day + timedelta(hours=5), kind="snapshot")
    gauges.note("b2", None)  # retention forgot its record: its time is still the last
    gauges.report(datetime.now(UTC))
    last = "vessel_app_last_success_timestamp_seconds"
    assert gauge(last, app=app, kind="backup") == (day + timedelta(days=1)).timestamp()
    assert gauge(last, app=app, kind="snapshot") == (day + timedelta(hours=5)).timestamp()

    specs = [
        ScheduleSpec(id="nightly", app_id=app, kind="backup", bucket="b", frequency="daily"),
        ScheduleSpec(
            id="often",
            app_id=app,
            kind="snapshot",
            bucket="b",
            frequency="cron",
            cron="*/15 * * * *",
        ),
        ScheduleSpec(
            id="off", app_id=app, kind="backup", bucket="b", frequency="hourly", enabled=False
        ),
    ]
    intervals = IntervalGauges(every=60)
    intervals.report(specs, day)
    every = "vessel_schedule_interval_seconds"
    assert gauge(every, schedule="nightly", app=app, kind="backup") == 86400
    assert gauge(every, schedule="often", app=app, kind="snapshot") == 900
    assert gauge(every, schedule="off", app=app, kind="backup") is None
    intervals.report(specs[1:], day + timedelta(seconds=30))  # within `every`: as it was
    assert gauge(every, schedule="nightly", app=app, kind="backup") == 86400
    intervals.report(specs[1:], day + timedelta(seconds=61))
    assert gauge(every, schedule="nightly", app=app, kind="backup") is None  # removed


def test_verifications_export_when_the_last_passed_and_how_the_newest_ended() -> None:
    """`vessel_backup_last_verified_timestamp_seconds` and the gauge the chart's
    `VesselVerificationFailed` watches."""
    app = f"c.ns.app-{uuid.uuid4().hex[:6]}"
    gauges = OperationGauges(None, interval=1)  # type: ignore[arg-type]  # fed by hand
    day = datetime(2026, 12, 1, tzinfo=UTC)

    def verified(op_id: str, phase: Phase, at: datetime) -> None:
        op = Operation(id=op_id, kind="verify", phase=phase, app_id=app, updated=at)
        gauges.note(op_id, op.model_dump_json().encode())

    verified("v1", Phase.COMPLETED, day)
    verified("v0", Phase.IN_PROGRESS, day + timedelta(hours=1))  # not ended: nothing yet
    gauges.report(datetime.now(UTC))
    assert gauge("vessel_backup_last_verified_timestamp_seconds", app=app) == day.timestamp()
    assert gauge("vessel_backup_last_verification_passed", app=app) == 1
    verified("v2", Phase.FAILED, day + timedelta(days=1))
    verified("v3", Phase.CANCELED, day + timedelta(days=2))  # canceled: says nothing
    gauges.report(datetime.now(UTC))
    assert gauge("vessel_backup_last_verification_passed", app=app) == 0
    assert gauge("vessel_backup_last_verified_timestamp_seconds", app=app) == day.timestamp()
    verified("v4", Phase.COMPLETED, day + timedelta(days=3))
    gauges.report(datetime.now(UTC))
    assert gauge("vessel_backup_last_verification_passed", app=app) == 1
