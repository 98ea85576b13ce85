"""Restores honouring their options, through protection's real restore flow: two emulated
clusters over HTTP, real NATS (operations, waits, commands) and a real S3 bucket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.protection.restore_kit import (
    APP,
    Bench,
    bench,
    claim,
    config_map,
    kinds_in,
    obj,
    storage_class,
)
from vessel.bus.nats_port import Bus
from vessel.kube.client import KubeCluster
from vessel.objectstore.minio_port import MinioStore


@pytest.fixture
async def b(bus: Bus, bucket: MinioStore, tmp_path: Path) -> AsyncIterator[Bench]:
    async with bench(bus, bucket, tmp_path) as running:
        yield running


async def names(kube: KubeCluster, api: str, kind: str, ns: str | None = None) -> list[str]:
    items, _ = await kube.list(api, kind, ns)
    return sorted(i["metadata"]["name"] for i in items)


async def test_into_a_new_namespace_of_another_cluster(b: Bench) -> None:
    backup = b.write_backup(APP)
    op = await b.restore(backup, "cluster-b", {"shop": "shop-copy"})
    assert op.phase == "Completed", op.message
    assert op.app_id == backup.app_id and op.source_cluster == "cluster-a"
    assert "shop-copy" in await names(b.b, "v1", "Namespace")
    assert await names(b.b, "v1", "ConfigMap", "shop-copy") == ["settings", "tuning"]
    assert await names(b.b, "apps/v1", "Deployment", "shop-copy") == ["web", "worker"]
    assert await names(b.b, "v1", "ConfigMap", "shop") == []
    assert await names(b.a, "v1", "ConfigMap", "shop-copy") == []
    assert len(op.items) == len(APP) + 1  # and the namespace
    assert all(i.state == "Completed" and i.namespace in ("", "shop-copy") for i in op.items)


async def test_into_a_new_namespace_of_the_same_cluster(b: Bench) -> None:
    backup = b.write_backup(APP)
    op = await b.restore(backup, "cluster-a", {"shop": "shop-2"})
    assert op.phase == "Completed", op.message
    assert await names(b.a, "apps/v1", "Deployment", "shop-2") == ["web", "worker"]


async def test_include_and_exclude_by_kind_name_and_label(b: Bench) -> None:
    backup = b.write_backup(APP)
    op = await b.restore(
        backup,
        include=[{"kinds": ["ConfigMap", "Deployment"]}, {"names": ["token"]}],
        exclude=[{"labels": {"tier": "front"}}],
    )
    assert op.phase == "Completed", op.message
    assert await names(b.b, "v1", "ConfigMap", "shop") == ["tuning"]
    assert await names(b.b, "apps/v1", "Deployment", "shop") == ["worker"]
    assert await names(b.b, "v1", "Secret", "shop") == ["token"]
    assert await names(b.b, "v1", "Service", "shop") == []


async def test_json_patch_transforms_change_what_is_written(b: Bench) -> None:
    backup = b.write_backup(APP)
    op = await b.restore(
        backup,
        mapping={"shop": "staging"},
        transforms=[
            {
                "match": {"kinds": ["Deployment"]},
                "patch": [{"op": "replace", "path": "/spec/replicas", "value": 0}],
            },
            {
                "match": {"names": ["settings"]},
                "patch": [{"op": "add", "path": "/data/env", "value": "staging"}],
            },
        ],
    )
    assert op.phase == "Completed", op.message
    web = await b.b.get("apps/v1", "Deployment", "web", "staging")
    assert web is not None and web["spec"]["replicas"] == 0
    settings = await b.b.get("v1", "ConfigMap", "settings", "staging")
    assert settings is not None and settings["data"] == {"greeting": "hello", "env": "staging"}


async def test_a_transform_that_does_not_apply_fails_before_writing(b: Bench) -> None:
    backup = b.write_backup(APP)
    op = await b.restore(
        backup,
        transforms=[{"patch": [{"op": "remove", "path": "/spec/nothing"}]}],
    )
    assert op.phase == "Failed"
    assert "options.transforms[0]" in op.message and "op remove /spec/nothing" in op.message
    assert "shop" not in await names(b.b, "v1", "Namespace")


async def test_storage_class_mapping_and_the_volume_flow(b: Bench) -> None:
    await b.b.create(storage_class("gold"))
    backup = b.write_backup([*APP, claim("data"), claim("logs")], claims=["data", "logs"])
    op = await b.restore(
        backup,
        storage_class_mapping={"fast": "gold"},
        exclude=[{"kinds": ["PersistentVolumeClaim"], "names": ["logs"]}],
    )
    assert op.phase == "InProgress", op.message
    assert [(w.namespace, w.claim) for w in op.volumes] == [("shop", "data")]  # logs filtered
    data = await b.b.get("v1", "PersistentVolumeClaim", "data", "shop")
    assert data is not None and data["spec"]["storageClassName"] == "gold"
    assert await b.b.get("v1", "PersistentVolumeClaim", "logs", "shop") is None
    assert await names(b.b, "apps/v1", "Deployment", "shop") == []  # not before the data
    await b.provisioned(op, "data", "shop")
    assert (await b.operation(op.id)).volumes[0].state == "Moving"
    await b.filled(op, "data")
    done = await b.operation(op.id)
    assert done.phase == "Completed", done.message
    assert await names(b.b, "apps/v1", "Deployment", "shop") == ["web", "worker"]
    assert "1 volumes restored" in done.message


async def test_a_missing_storage_class_is_rejected_before_anything_is_written(b: Bench) -> None:
    await b.b.create(storage_class("gold"))
    backup = b.write_backup([*APP, claim("data")], claims=["data"])
    op = await b.restore(backup, storage_class_mapping={"other": "gold"})
    assert op.phase == "Failed"
    assert "options.storage_class_mapping" in op.message and "'fast'" in op.message
    assert "shop" not in await names(b.b, "v1", "Namespace")
    assert op.volumes == []


async def test_policy_skip_leaves_existing_objects_and_their_claims(b: Bench) -> None:
    await b.b.create(obj("Namespace", "shop", ns=None))
    await b.b.create(config_map("settings", data={"greeting": "local edit"}))
    await b.b.create(storage_class("fast"))
    await b.b.create(claim("data"))
    backup = b.write_backup([*APP, claim("data")], claims=["data"])
    op = await b.restore(backup)
    assert op.phase == "Completed", op.message  # the existing claim's volume is not refilled
    assert op.volumes == []
    kept = await b.b.get("v1", "ConfigMap", "settings", "shop")
    assert kept is not None and kept["data"] == {"greeting": "local edit"}
    assert kinds_in(op.items, "Skipped") == [
        "ConfigMap/settings",
        "Namespace/shop",
        "PersistentVolumeClaim/data",
    ]
    assert "ConfigMap/tuning" in kinds_in(op.items, "Completed")


async def test_policy_update_replaces_existing_objects_but_not_claims(b: Bench) -> None:
    await b.b.create(obj("Namespace", "shop", ns=None))
    await b.b.create(config_map("settings", data={"greeting": "local edit"}, extra="yes"))
    await b.b.create(storage_class("fast"))
    await b.b.create(claim("data"))
    backup = b.write_backup([*APP, claim("data")], claims=["data"])
    op = await b.restore(backup, existing="update")
    assert op.phase == "Completed", op.message
    replaced = await b.b.get("v1", "ConfigMap", "settings", "shop")
    assert replaced is not None and replaced["data"] == {"greeting": "hello"}
    assert replaced["metadata"]["labels"] == {"tier": "front"}
    settings = next(i for i in op.items if i.name == "settings")
    assert settings.state == "Completed" and "replaced" in settings.message
    data = next(i for i in op.items if i.kind == "PersistentVolumeClaim")
    assert data.state == "Skipped" and "volume" in data.message
    assert op.volumes == []


async def test_policy_fail_lists_the_conflicts_and_writes_nothing(b: Bench) -> None:
    await b.b.create(obj("Namespace", "shop", ns=None))
    await b.b.create(config_map("settings"))
    await b.b.create(obj("Secret", "token", type="Opaque"))
    backup = b.write_backup(APP)
    op = await b.restore(backup, existing="fail")
    assert op.phase == "Failed"
    assert "options.existing" in op.message
    assert "ConfigMap shop/settings" in op.message and "Secret shop/token" in op.message
    assert "Namespace" not in op.message  # landing in an existing namespace is no conflict
    assert await names(b.b, "v1", "ConfigMap", "shop") == ["settings"]
    assert await names(b.b, "apps/v1", "Deployment", "shop") == []
    # Without conflicts the same policy restores.
    again = await b.restore(backup, mapping={"shop": "fresh"}, existing="fail")
    assert again.phase == "Completed", again.message


async def test_objects_the_cluster_refuses_make_it_partially_failed(b: Bench) -> None:
    gadget = obj("Gadget", "g1", api="example.com/v1")  # a kind cluster-b does not serve
    backup = b.write_backup([*APP, gadget])
    op = await b.restore(backup)
    assert op.phase == "PartiallyFailed", op.message
    assert kinds_in(op.items, "Failed") == ["Gadget/g1"]
    assert "Gadget shop/g1" in op.message
    assert await names(b.b, "apps/v1", "Deployment", "shop") == ["web", "worker"]


async def test_unknown_backup_and_cluster_fail_with_reasons(b: Bench) -> None:
    backup = b.write_backup(APP)
    op = await b.restore(backup, target="cluster-z")
    assert op.phase == "Failed" and "cluster 'cluster-z' is not registered" in op.message
    backup.backup_id = "backup-missing"
    op = await b.restore(backup)
    assert op.phase == "Failed" and "backup-missing is not in bucket" in op.message
