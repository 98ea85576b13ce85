"""Operations as gauges, from a watch of their KV bucket: counts by kind and phase, and the
age of the oldest one not ended (0 once none runs), which the chart's alert watches."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from services.protection.operation_gauges import OperationGauges
from vessel.bus.nats_port import Bus
from vessel.contracts.operations import Operation, Phase
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
