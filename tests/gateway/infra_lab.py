"""A world for the infrastructure API tests: a real gateway over TLS, a provisioner of an
emulated cluster in-process (real NATS, a real dir backend, the Kubernetes API emulator
over HTTP), claims bound in namespaces `a` and `b`, a VolumeSnapshot, and tokens of every
role. A second configured cluster has no provisioner at all."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_status import rpc_status

from services.gateway.main import build_gateway
from tests.gateway.harness import ADMIN_ENV, ADMIN_TOKEN, Pki, Running, issue, make_settings
from tests.provisioner.lab import SNAPSHOT_API, Lab, serve_queries, wait_for
from tests.provisioner.lab import ServedBackendAdmin as BackendAdmin
from vessel.bus.nats_port import Bus
from vessel.config import PROVISIONER_NAME, BackendConfig
from vessel.kube.client import KubeCluster
from vessel.kube.objects import KubeObject
from vessel.stopping import cancel_and_wait
from vessel_dev.emulators.kube import KubeEmulator
from vessel_dev.rig.processes import NatsServer

GiB = 1 << 30


@dataclass
class InfraWorld:
    gateway: Running
    channel: grpc.aio.Channel
    bus: Bus
    lab: Lab
    cluster: str
    dark: str
    """A configured cluster whose provisioner does not run."""
    tmp: Path
    volumes: dict[str, str] = field(default_factory=dict)
    """claim name → volume id."""
    snapshot_id: str = ""
    tokens: dict[str, str] = field(default_factory=dict)


def status_of(error: grpc.aio.AioRpcError) -> tuple[grpc.StatusCode, str]:
    return error.code(), error.details() or ""


def details(error: grpc.aio.AioRpcError) -> list[Any]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    return list(status.details) if status else []


async def _bound_volume(lab: Lab, namespace: str, name: str, storage_class: KubeObject) -> str:
    lab.namespace = namespace
    await lab.claim(name, storage_class, "64Mi")
    claim, _ = await lab.bound(name)
    return f"pvc-{claim['metadata']['uid']}"


@contextlib.asynccontextmanager
async def infra_world(nats_server: NatsServer, pki: Pki, tmp: Path) -> AsyncIterator[InfraWorld]:
    patch = pytest.MonkeyPatch()
    patch.delenv("VESSEL_CONFIG", raising=False)
    emulator = KubeEmulator()
    emulator.start()
    kubeconfig = tmp / "kubeconfig"
    emulator.write_kubeconfig(kubeconfig)
    bus = Bus(source="/clusters/test/gateway-infra")
    await bus.connect(nats_server.url, name="gateway-infra")
    lab = Lab(KubeCluster(kubeconfig, "infra"), bus, [])
    tasks: list[asyncio.Task[None]] = []
    gateway: Running | None = None
    try:
        provisioner = await lab.start()
        root = tmp / "local"
        root.mkdir()
        configured = [BackendConfig(name="local", type="dir", path=root, capacity_bytes=GiB)]
        admin = BackendAdmin(provisioner.env, bus, await bus.kv("backends"), configured)
        await admin.load()
        tasks.append(asyncio.create_task(admin.serve(provisioner.ready)))
        tasks.append(asyncio.create_task(serve_queries(provisioner.env, bus, provisioner.ready)))
        dark = f"dark-{uuid.uuid4().hex[:6]}"
        settings = make_settings(
            tls={"cert_file": str(pki.server_cert), "key_file": str(pki.server_key)},
            clusters=[lab.cluster, dark],
        )
        built = await build_gateway(settings, bus, environ={ADMIN_ENV: ADMIN_TOKEN})
        await built.start()
        gateway = Running(built, pki)
        channel = gateway.channel()
        world = InfraWorld(gateway, channel, bus, lab, lab.cluster, dark, tmp)
        sc = await lab.kube.create(
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {
                    "name": f"fast-{lab.cluster}",
                    "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
                },
                "provisioner": PROVISIONER_NAME,
                "reclaimPolicy": "Delete",
                "volumeBindingMode": "Immediate",
                "allowVolumeExpansion": True,
            }
        )
        for namespace in ("a", "b"):
            await lab.kube.create(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
            )
        for namespace, name in (("a", "data-a1"), ("a", "data-a2"), ("b", "data-b1")):
            world.volumes[name] = await _bound_volume(lab, namespace, name, sc)
        world.snapshot_id = await _snapshot(lab, "a", "snap-a1", "data-a1")
        world.tokens["admin"] = ADMIN_TOKEN
        for role in ("viewer", "member"):
            _, world.tokens[role] = await issue(channel, ADMIN_TOKEN, role)
        _, world.tokens["viewer-a"] = await issue(
            channel, ADMIN_TOKEN, "viewer", clusters=[lab.cluster], namespaces=["a"]
        )
        yield world
    finally:
        if gateway is not None:
            await gateway.close()
        await cancel_and_wait(tasks)
        await lab.close()
        tokens = await bus.kv("tokens")
        for key in await tokens.keys():
            await tokens.delete(key)
        await bus.close()
        emulator.stop()
        patch.undo()


async def _snapshot(lab: Lab, namespace: str, name: str, claim: str) -> str:
    """A ready VolumeSnapshot of `claim`; its snapshot id (the record's key part)."""
    lab.namespace = namespace
    vsclass = await lab.kube.create(
        {
            "apiVersion": SNAPSHOT_API,
            "kind": "VolumeSnapshotClass",
            "metadata": {"name": f"snaps-{lab.cluster}"},
            "driver": PROVISIONER_NAME,
            "deletionPolicy": "Delete",
        }
    )
    await lab.kube.create(
        {
            "apiVersion": SNAPSHOT_API,
            "kind": "VolumeSnapshot",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "volumeSnapshotClassName": vsclass["metadata"]["name"],
                "source": {"persistentVolumeClaimName": claim},
            },
        }
    )

    async def record_id() -> str | None:
        assert lab.snapshots_kv is not None
        for key in await lab.snapshots_kv.keys():
            if key.startswith(f"{lab.cluster}."):
                entry = await lab.snapshots_kv.get(key)
                if entry is not None and b'"Ready"' in entry.value:
                    return key.split(".", 1)[1]
        return None

    return await wait_for(record_id, f"snapshot {name} ready")
