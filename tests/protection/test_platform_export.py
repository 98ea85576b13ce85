"""The platform export over real NATS and a real bucket: what the policy KV buckets hold is
sealed into every bucket a second after it changes, rewritten only when it changed, and
an unreadable record is left out instead of stopping the export."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from services.protection.context import ProtectionContext
from services.protection.platform import PlatformExporter
from tests.support import sealed
from vessel.bus.nats_port import Bus
from vessel.contracts import state
from vessel.contracts.buckets import BucketRecord, BucketSpec, SecretKeyRef
from vessel.contracts.commands import DefineApp
from vessel.contracts.hooks import ExecHook
from vessel.contracts.platform import PlatformExport
from vessel.contracts.protection import ScheduleSpec
from vessel.objectstore.base import ObjectNotFound
from vessel.objectstore.minio_port import MinioStore
from vessel.stopping import cancel_and_wait

pytestmark = pytest.mark.timeout(60)


async def test_policies_are_sealed_into_every_bucket(bus: Bus, bucket: MinioStore) -> None:
    suffix = uuid.uuid4().hex[:8]
    followed = {
        b.name: await bus.kv(f"t_{b.name.replace('-', '_')}_{suffix}")
        for b in (state.SCHEDULES, state.HOOKS, state.APP_DEFINITIONS, state.BUCKETS)
    }
    schedule = ScheduleSpec(
        id="nightly", app_id="c1.shop.shop", kind="verify", bucket="default", frequency="daily"
    )
    hook = ExecHook(
        id="flush",
        app_id="c1.shop.shop",
        stage="pre-snapshot",
        container_name="^db$",
        command=["sync"],
    )
    app = DefineApp(operation_id="d-1", cluster="c1", namespace="shop", name="db", unmanaged=True)
    ref = SecretKeyRef(namespace="vessel", name="offsite", key="k")
    spec = BucketSpec(
        name="offsite",
        endpoint="s3.example:9000",
        bucket="offsite",
        access_key=ref,
        secret_key=ref,
        password=ref,
    )
    record = BucketRecord(spec=spec, registered=datetime.now(UTC))
    await followed["schedules"].put("nightly", schedule.model_dump_json().encode())
    await followed["schedules"].put("broken", b"{not a schedule")
    await followed["hooks"].put("c1.shop.shop.flush", hook.model_dump_json().encode())
    await followed["app-definitions"].put("c1.shop.db", app.model_dump_json().encode())
    await followed["buckets"].put("offsite", record.model_dump_json().encode())

    sb = sealed(bucket)
    none: Any = None
    p = ProtectionContext(none, {}, lambda name: sb, none, none, none)

    async def buckets() -> list[str]:
        return ["default"]

    exporter = PlatformExporter(p, "vessel-test", buckets, followed)

    async def exported() -> PlatformExport:
        for _ in range(100):
            try:
                key = state.platform_key("vessel-test")
                return PlatformExport.model_validate(sb.get(key, "platform", "vessel-test"))
            except ObjectNotFound:
                await asyncio.sleep(0.1)
        raise AssertionError("nothing exported")

    task = asyncio.create_task(exporter.run())
    try:
        export = await exported()
        assert export.schedules == [schedule] and export.hooks == [hook]
        assert export.apps == [app] and export.buckets == [spec]
        assert await exporter.export() == []  # nothing changed: nothing written again
        await followed["schedules"].delete("nightly")
        for _ in range(50):
            export = await exported()
            if not export.schedules:
                break
            await asyncio.sleep(0.1)
        assert export.schedules == [] and export.hooks == [hook]
    finally:
        await cancel_and_wait([task])
