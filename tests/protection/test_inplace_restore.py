"""In-place restore through protection's real restore flow: confirm required, the app's
workloads and restored claims cleared first, the lock key held exactly while it runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.protection.state.locks import lock_key
from tests.protection.restore_kit import (
    APP,
    Bench,
    bench,
    claim,
    config_map,
    deployment,
    kinds_in,
    obj,
    storage_class,
)
from vessel.bus.nats_port import Bus
from vessel.contracts import state
from vessel.contracts.events import AppRecord
from vessel.contracts.models import ResourceRef
from vessel.contracts.operations import Operation, Phase
from vessel.contracts.protection import OperationCanceled
from vessel.objectstore.minio_port import MinioStore


@pytest.fixture
async def b(bus: Bus, bucket: MinioStore, tmp_path: Path) -> AsyncIterator[Bench]:
    async with bench(bus, bucket, tmp_path) as running:
        yield running


async def running_app(b: Bench, app_id: str) -> dict[str, str]:
    """The app as it runs in cluster-a after the backup: edited, grown, with its claim.
    Returns the claim's uid."""
    for o in [
        obj("Namespace", "shop", ns=None),
        storage_class("fast"),
        config_map("settings", data={"greeting": "edited since"}),
        deployment("web"),
        deployment("added-later"),
        claim("data"),
        claim("scratch"),
    ]:
        await b.a.create(o)
    record = AppRecord(
        cluster="cluster-a",
        namespace="shop",
        name=app_id.rsplit(".", 1)[1],
        grouping="namespace",
        state="Available",
        workloads=[
            ResourceRef(api_version="apps/v1", kind="Deployment", name=n, namespace="shop")
            for n in ("web", "added-later")
        ],
    )
    await b.p.inventory.put(f"apps.{app_id}", record.model_dump_json().encode())
    data = await b.a.get("v1", "PersistentVolumeClaim", "data", "shop")
    assert data is not None
    return {"data": data["metadata"]["uid"]}


async def lock_holder(b: Bench, app_id: str) -> str | None:
    entry = await (await b.p.bus.kv(state.PROTECTION_LOCKS.name)).get(lock_key(app_id))
    return entry.value.decode() if entry else None


async def test_in_place_without_confirm_fails_and_touches_nothing(b: Bench) -> None:
    backup = b.write_backup([*APP, claim("data")], claims=["data"])
    uids = await running_app(b, backup.app_id)
    op = await b.restore(backup, "cluster-a", in_place=True)
    assert op.phase == "Failed" and "options.confirm" in op.message
    still = await b.a.get("v1", "PersistentVolumeClaim", "data", "shop")
    assert still is not None and still["metadata"]["uid"] == uids["data"]
    assert await b.a.get("apps/v1", "Deployment", "added-later", "shop") is not None
    assert await lock_holder(b, backup.app_id) is None


async def test_in_place_replaces_the_app_and_holds_the_lock_while_running(b: Bench) -> None:
    backup = b.write_backup([*APP, claim("data")], claims=["data"])
    uids = await running_app(b, backup.app_id)
    op = await b.restore(backup, "cluster-a", in_place=True, confirm=True)
    assert op.phase == "InProgress", op.message
    assert await lock_holder(b, backup.app_id) == op.id
    # Cleared: every workload of the app; the restored claim is a new one, to be filled.
    assert await b.a.get("apps/v1", "Deployment", "added-later", "shop") is None
    assert await b.a.get("apps/v1", "Deployment", "web", "shop") is None
    data = await b.a.get("v1", "PersistentVolumeClaim", "data", "shop")
    assert data is not None and data["metadata"]["uid"] != uids["data"]
    assert await b.a.get("v1", "PersistentVolumeClaim", "scratch", "shop") is not None
    # What survived the clearing is replaced by the backup's version.
    settings = await b.a.get("v1", "ConfigMap", "settings", "shop")
    assert settings is not None and settings["data"] == {"greeting": "hello"}
    assert [(w.namespace, w.claim) for w in op.volumes] == [("shop", "data")]

    await b.provisioned(op, "data", "shop")
    await b.filled(op, "data")
    done = await b.operation(op.id)
    assert done.phase == "Completed", done.message
    assert await lock_holder(b, backup.app_id) is None
    web = await b.a.get("apps/v1", "Deployment", "web", "shop")
    assert web is not None and web["metadata"]["labels"] == {"app": "web", "tier": "front"}
    assert await b.a.get("apps/v1", "Deployment", "added-later", "shop") is None
    assert "ConfigMap/settings" in kinds_in(done.items, "Completed")


async def test_the_lock_is_released_when_the_restore_fails(b: Bench) -> None:
    backup = b.write_backup([*APP, claim("data")], claims=["data"])
    await running_app(b, backup.app_id)
    op = await b.restore(backup, "cluster-a", in_place=True, confirm=True)
    assert await lock_holder(b, backup.app_id) == op.id
    await b.provisioned(op, "data", "shop")
    await b.filled(op, "data", error="repository unreachable")
    failed: Operation = await b.operation(op.id)
    assert failed.phase == "Failed" and "repository unreachable" in failed.message
    assert await lock_holder(b, backup.app_id) is None


async def test_a_second_in_place_restore_of_the_app_waits_its_turn(b: Bench) -> None:
    backup = b.write_backup([*APP, claim("data")], claims=["data"])
    await running_app(b, backup.app_id)
    first = await b.restore(backup, "cluster-a", in_place=True, confirm=True)
    second = await b.restore(backup, "cluster-a", in_place=True, confirm=True)
    assert second.phase == "Failed"
    assert f"being restored in place by operation {first.id}" in second.message
    assert await lock_holder(b, backup.app_id) == first.id


async def test_a_canceled_in_place_restore_unlocks_the_app_and_fills_nothing(b: Bench) -> None:
    backup = b.write_backup([*APP, claim("data")], claims=["data"])
    await running_app(b, backup.app_id)
    op = await b.restore(backup, "cluster-a", in_place=True, confirm=True)

    def cancel(o: Operation) -> None:
        o.phase = Phase.CANCELED

    await b.p.operations.change(op.id, cancel)
    await b.flow.on_canceled(OperationCanceled(operation_id=op.id, kind="restore"))
    assert await lock_holder(b, backup.app_id) is None
    await b.provisioned(op, "data", "shop")  # late: the volume is not filled
    assert (await b.operation(op.id)).volumes[0].state == "Waiting"
    assert await b.p.waits.get("cluster-a.shop.data") is None
