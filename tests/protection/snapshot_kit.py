"""Helpers for the app snapshot and backup tests: the embedded stack (every service its own
process, real NATS, S3 and btrfs when root), an app of three claims in cluster A, and
waits on operations and records over the bus."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from services.protection.bucket_catalog import read_snapshot_resources
from tests.support import full_stack
from vessel.bus.nats_port import Bus
from vessel.contracts.events import AppRecord
from vessel.contracts.hooks import ExecHook, HookStage
from vessel.contracts.operations import Operation
from vessel.contracts.protection import AppSnapshotRecord
from vessel.kube.client import KubeCluster
from vessel.kube.objects import KubeObject
from vessel_dev.rig.scenario import (
    bound_volume_path,
    claim_object,
    create_all,
    deployment_object,
    tree_digest,
)
from vessel_dev.rig.stack import STORAGE_CLASS, Stack

NAMESPACE = "inventory"
APP = "inv"
APP_ID = f"cluster-a.{NAMESPACE}.{APP}"
CLAIMS = ("orders", "stock", "audit")
SNAPSHOT_API = "snapshot.storage.k8s.io/v1"


def running_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One stack for a test module (use as a module-scoped fixture)."""
    with full_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running


async def connected_bus(stack: Stack) -> AsyncIterator[Bus]:
    bus = Bus(source="/clusters/test/protection")
    await bus.connect(stack.nats.url, name="protection-tests")
    yield bus
    await bus.close()


def cluster(stack: Stack, cluster_id: str) -> KubeCluster:
    return KubeCluster(stack.kubeconfigs[cluster_id], cluster_id)


def app_objects() -> list[KubeObject]:
    labels = {"app": APP}
    mounts = [{"name": n, "mountPath": f"/data/{n}"} for n in CLAIMS]
    db = {"name": "db", "image": "db:1", "volumeMounts": mounts}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "inv-config", "namespace": NAMESPACE, "labels": labels},
            "data": {"mode": "strict"},
        },
        *(claim_object(name, NAMESPACE, labels, "32Mi") for name in CLAIMS),
        deployment_object("inv-db", NAMESPACE, labels, db, {n: n for n in CLAIMS}),
    ]


def write_generation(paths: dict[str, Path], generation: int) -> None:
    """Each claim gets a large file (unchanged across generations) and a small one that
    names the generation."""
    for name, root in paths.items():
        big = root / "big.bin"
        if not big.exists():
            big.write_bytes(name.encode() * (1 << 19))
        (root / "state.txt").write_text(f"{name} generation {generation}\n")


def digests(paths: dict[str, Path]) -> dict[str, dict[str, str]]:
    return {name: tree_digest(root) for name, root in paths.items()}


@dataclass
class App:
    paths: dict[str, Path]


async def deploy_app(stack: Stack, bus: Bus) -> App:
    """The app in cluster A, its claims bound and filled, known to discovery."""
    a, b = cluster(stack, "cluster-a"), cluster(stack, "cluster-b")
    for kube in (a, b):
        if await kube.get("storage.k8s.io/v1", "StorageClass", STORAGE_CLASS) is None:
            await kube.create(stack.storage_class())
    await create_all(a, app_objects())
    paths = {name: await bound_volume_path(a, NAMESPACE, name) for name in CLAIMS}
    write_generation(paths, 1)
    inventory = await bus.kv("inventory")

    async def discovered() -> bool:
        entry = await inventory.get(f"apps.{APP_ID}")
        app = AppRecord.model_validate_json(entry.value) if entry else None
        return app is not None and sorted(c.name for c in app.claims if c.volume_name) == sorted(
            CLAIMS
        )

    await until(discovered, "the app discovered with its three bound claims")
    return App(paths)


async def until(check: Any, what: str, within: float = 60) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {within:.0f}s waiting for {what}")


async def finished(bus: Bus, op_id: str, within: float = 60) -> Operation:
    operations = await bus.kv("operations")

    async def check() -> Operation | None:
        entry = await operations.get(op_id)
        op = Operation.model_validate_json(entry.value) if entry else None
        return op if op is not None and op.done else None

    op: Operation = await until(check, f"operation {op_id} to end", within)
    return op


async def snapshot_record(bus: Bus, snapshot_id: str) -> AppSnapshotRecord | None:
    entry = await (await bus.kv("app_snapshots")).get(snapshot_id)
    return AppSnapshotRecord.model_validate_json(entry.value) if entry else None


def archive_kinds(stack: Stack, snapshot_id: str, key: str) -> list[tuple[str, str]]:
    objects = read_snapshot_resources(stack.sealed(), snapshot_id, key)
    return sorted((o["kind"], o["metadata"]["name"]) for o in objects)


POD = "inv-db-0"


async def running_pod(kube: KubeCluster) -> None:
    """A running pod of the app's Deployment, where hooks run."""
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": POD, "namespace": NAMESPACE, "labels": {"app": APP}},
            "spec": {"containers": [{"name": "db", "image": "db:1"}]},
        }
    )
    await kube.patch("v1", "Pod", POD, NAMESPACE, {"status": {"phase": "Running"}}, status=True)


def hook(hook_id: str, stage: HookStage, command: list[str]) -> ExecHook:
    return ExecHook(id=hook_id, app_id=APP_ID, stage=stage, container_name="^db$", command=command)
