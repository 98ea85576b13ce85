"""A real provisioner process killed between "backend volume created" and "PV created"
(`VESSEL_TEST_CRASH_AFTER=volume-created` makes it `os._exit(137)` there) is repaired by
the next process: no duplicate, no orphan. A claim deleted meanwhile is reclaimed."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.provisioner.crash import CRASH_ENV
from tests.provisioner.lab import Lab, wait_for
from vessel.bus.nats_port import Bus
from vessel.config import PROVISIONER_NAME
from vessel.kube.client import KubeCluster
from vessel.kube.objects import KubeObject
from vessel_dev.emulators.kube import KubeEmulator
from vessel_dev.rig.processes import NatsServer, Process

pytestmark = pytest.mark.timeout(60)


class ProvisionerProcess:
    def __init__(self, workdir: Path, nats_url: str, kubeconfig: Path, cluster: str) -> None:
        self.workdir = workdir
        self.cluster = cluster
        self.root = workdir / "volumes"
        self.root.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "vessel.yaml"
        backend = {"name": "local", "type": "dir", "path": str(self.root)}
        settings = {
            "nats_url": nats_url,
            "provisioner_resync_seconds": 0.5,
            "clusters": [{"id": cluster, "kubeconfig": str(kubeconfig), "backends": [backend]}],
        }
        self.config.write_text(yaml.safe_dump(settings))
        self.process: Process | None = None

    def start(self, crash_after: str | None = None) -> Process:
        env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
        env["VESSEL_CONFIG"] = str(self.config)
        if crash_after:
            env[CRASH_ENV] = crash_after
        argv = [sys.executable, "-m", "services.provisioner", "--cluster", self.cluster]
        self.process = Process("provisioner", argv, self.workdir / "provisioner.log", env=env)
        self.process.start()
        return self.process

    def wait_exit(self, timeout: float = 30) -> int:
        assert self.process is not None and self.process.popen is not None
        deadline = time.monotonic() + timeout
        while (code := self.process.popen.poll()) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"provisioner still running:\n{self.process.tail()}")
            time.sleep(0.05)
        return code

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def volumes(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and p.name[:4] == "pvc-")


@pytest.fixture
def process(
    tmp_path: Path, nats_server: NatsServer, kube_emulator: tuple[KubeEmulator, Path]
) -> Any:
    proc = ProvisionerProcess(
        tmp_path, nats_server.url, kube_emulator[1], f"crash-{uuid.uuid4().hex[:8]}"
    )
    yield proc
    proc.stop()


async def storage_class(kube: KubeCluster, name: str, policy: str) -> KubeObject:
    return await kube.create(
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": name},
            "provisioner": PROVISIONER_NAME,
            "reclaimPolicy": policy,
        }
    )


async def crash_while_provisioning(
    kube: KubeCluster, process: ProvisionerProcess, policy: str
) -> KubeObject:
    """Start a provisioner that dies right after the backend volume exists."""
    await storage_class(kube, f"crash-{policy.lower()}", policy)
    process.start(crash_after="volume-created")
    claim = await kube.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "victim", "namespace": "default"},
            "spec": {
                "storageClassName": f"crash-{policy.lower()}",
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "32Mi"}},
            },
        }
    )
    assert await asyncio.to_thread(process.wait_exit) == 137
    volume_id = f"pvc-{claim['metadata']['uid']}"
    assert process.volumes() == [volume_id]  # the backend volume exists...
    assert await kube.get("v1", "PersistentVolume", volume_id) is None  # ...its PV does not
    return claim


async def test_a_crash_after_the_backend_volume_is_repaired_on_restart(
    kube: KubeCluster, bus: Bus, process: ProvisionerProcess
) -> None:
    lab = Lab(kube, bus, [], cluster=process.cluster)
    claim = await crash_while_provisioning(kube, process, "Delete")
    volume_id = f"pvc-{claim['metadata']['uid']}"
    process.start()

    async def bound() -> KubeObject | None:
        current = await lab.get_claim("victim")
        return current if (current or {}).get("status", {}).get("phase") == "Bound" else None

    bound_claim = await wait_for(bound, "claim bound after restart", 30)
    assert bound_claim["spec"]["volumeName"] == volume_id
    pvs, _ = await kube.list("v1", "PersistentVolume")
    assert [pv["metadata"]["name"] for pv in pvs] == [volume_id]
    assert process.volumes() == [volume_id]
    lab.volumes_kv = await bus.kv("volumes")
    record = await wait_for(lambda: _state(lab, volume_id, "Bound"), "record Bound", 10)
    assert record["backend"] == "local"


async def _state(lab: Lab, volume_id: str, state: str) -> dict[str, Any] | None:
    record = await lab.record(volume_id)
    return record if record is not None and record["state"] == state else None


@pytest.mark.parametrize("policy", ["Delete", "Retain"])
async def test_an_orphan_left_by_a_crash_is_reclaimed_per_policy(
    kube: KubeCluster, bus: Bus, process: ProvisionerProcess, policy: str
) -> None:
    """The claim is deleted while the provisioner is down: its backend volume has no
    claim and no PV, and the next provisioner reclaims it as the class says."""
    lab = Lab(kube, bus, [], cluster=process.cluster)
    lab.volumes_kv = await bus.kv("volumes")
    claim = await crash_while_provisioning(kube, process, policy)
    volume_id = f"pvc-{claim['metadata']['uid']}"
    await kube.delete("v1", "PersistentVolumeClaim", "victim", "default")
    process.start()
    if policy == "Delete":
        await wait_for(lambda: _no_record(lab, volume_id), "orphan reclaimed", 30)
        assert process.volumes() == []
    else:
        await wait_for(lambda: _state(lab, volume_id, "Retained"), "orphan retained", 30)
        assert process.volumes() == [volume_id]
    assert await kube.get("v1", "PersistentVolume", volume_id) is None


async def _no_record(lab: Lab, volume_id: str) -> bool:
    return await lab.record(volume_id) is None
