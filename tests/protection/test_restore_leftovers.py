"""A restore that fails or is canceled leaves nothing that looks restored: by default what
it created is deleted (objects that were there before stay), and with the option off, or
in place, its claims are annotated `vessel.io/restore-incomplete` with a Warning Event.
Protection's real restore flow, two emulated clusters, real NATS and a real S3 bucket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.protection.restore_leftovers import INCOMPLETE
from tests.protection.restore_kit import APP, Bench, bench, claim, config_map, storage_class
from vessel.bus.nats_port import Bus
from vessel.contracts.operations import Phase
from vessel.contracts.protection import OperationCanceled
from vessel.kube.client import KubeCluster
from vessel.objectstore.minio_port import MinioStore


@pytest.fixture
async def b(bus: Bus, bucket: MinioStore, tmp_path: Path) -> AsyncIterator[Bench]:
    async with bench(bus, bucket, tmp_path) as running:
        await running.b.create(storage_class("fast"))
        yield running


async def names(kube: KubeCluster, api: str, kind: str, ns: str | None = None) -> list[str]:
    items, _ = await kube.list(api, kind, ns)
    return sorted(i["metadata"]["name"] for i in items)


async def test_a_failed_restore_deletes_what_it_created_and_nothing_else(b: Bench) -> None:
    await b.b.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    await b.b.create(config_map("tuning", data={"level": "theirs"}))  # there before
    backup = b.write_backup([*APP, claim("data"), claim("logs")], claims=["data", "logs"])
    op = await b.restore(backup)
    assert op.phase == "InProgress", op.message
    assert await names(b.b, "v1", "PersistentVolumeClaim", "shop") == ["data", "logs"]
    await b.provisioned(op, "data", "shop")
    await b.provisioned(op, "logs", "shop")
    await b.filled(op, "data")
    await b.filled(op, "logs", error="object store unreachable")

    done = await b.operation(op.id)
    assert done.phase == Phase.FAILED
    assert "object store unreachable" in done.message
    assert "deleted the 5 objects it created" in done.message, done.message
    assert await names(b.b, "v1", "PersistentVolumeClaim", "shop") == []
    assert await names(b.b, "v1", "ConfigMap", "shop") == ["tuning"]  # not the restore's
    kept = await b.b.get("v1", "ConfigMap", "tuning", "shop")
    assert kept is not None and kept["data"] == {"level": "theirs"}
    assert "shop" in await names(b.b, "v1", "Namespace")  # it was there before


async def test_kept_on_failure_its_claims_say_they_are_incomplete(b: Bench) -> None:
    backup = b.write_backup([*APP, claim("data")], claims=["data"])
    op = await b.restore(backup, mapping={"shop": "kept"}, cleanup_on_failure=False)
    await b.provisioned(op, "data", "kept")
    await b.filled(op, "data", error="disk full")

    done = await b.operation(op.id)
    assert done.phase == Phase.FAILED
    assert f"claims annotated {INCOMPLETE}: kept/data" in done.message, done.message
    data = await b.b.get("v1", "PersistentVolumeClaim", "data", "kept")
    assert data is not None
    assert data["metadata"]["annotations"][INCOMPLETE].startswith(f"{op.id}: ")
    assert "disk full" in data["metadata"]["annotations"][INCOMPLETE]
    events, _ = await b.b.list("v1", "Event", "kept")
    [event] = [e for e in events if e["involvedObject"]["name"] == "data"]
    assert event["reason"] == "RestoreIncomplete" and event["type"] == "Warning"
    assert op.id in event["message"]
    assert await names(b.b, "v1", "ConfigMap", "kept") == ["settings", "tuning"]


async def test_a_canceled_restore_deletes_what_it_created(b: Bench) -> None:
    backup = b.write_backup([*APP, claim("data")], claims=["data"])
    op = await b.restore(backup, mapping={"shop": "gone"})
    assert await names(b.b, "v1", "PersistentVolumeClaim", "gone") == ["data"]

    def cancel(o: object) -> None:
        o.phase, o.message = Phase.CANCELED, "canceled by test"  # type: ignore[attr-defined]

    await b.p.operations.change(op.id, cancel)
    await b.flow.on_canceled(
        OperationCanceled(operation_id=op.id, kind="restore", requested_by="test")
    )
    done = await b.operation(op.id)
    assert done.phase == Phase.CANCELED
    assert done.message.startswith("canceled by test; deleted the"), done.message
    assert await names(b.b, "v1", "PersistentVolumeClaim", "gone") == []
    assert "gone" not in await names(b.b, "v1", "Namespace")
    assert await b.p.restore_waits.waiting("cluster-b", "gone", "data") is None
