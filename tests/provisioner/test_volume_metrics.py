"""Per-claim volume metrics, as kubelet's `kubelet_volume_stats_*` would give them (hostPath
volumes get none): bytes used and capacity, labelled by cluster, namespace, claim and node,
on btrfs (qgroup numbers) and dir backends; a claim deleted is no longer shown."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from services.provisioner.adapters.base import StorageBackend
from services.provisioner.adapters.btrfs import BtrfsBackend
from services.provisioner.adapters.dirfs import DirBackend
from services.provisioner.capacity import _measure
from tests.provisioner.lab import Lab, running_lab
from vessel.bus.nats_port import Bus
from vessel.kube.client import KubeCluster

MiB = 1 << 20


def sample(name: str, lab: Lab, claim: str) -> float | None:
    labels = {
        "cluster": lab.cluster,
        "namespace": lab.namespace,
        "persistentvolumeclaim": claim,
        "node": "",
    }
    return REGISTRY.get_sample_value(name, labels)


@pytest.fixture(params=["dir", "btrfs"])
async def lab(
    request: pytest.FixtureRequest, kube: KubeCluster, bus: Bus, tmp_path: Path
) -> AsyncIterator[Lab]:
    backend: StorageBackend = (
        DirBackend("local", tmp_path, 1 << 30)
        if request.param == "dir"
        else BtrfsBackend("fast", request.getfixturevalue("btrfs_root"), 256 * MiB)
    )
    async with running_lab(kube, bus, [backend]) as running:
        yield running


async def test_each_claim_shows_what_it_uses_and_may_hold(lab: Lab) -> None:
    provisioner = await lab.start()
    sc = await lab.storage_class("metered")
    await lab.claim("data", sc, "64Mi")
    await lab.claim("empty", sc, "32Mi")
    _, pv = await lab.bound("data")
    await lab.bound("empty")
    (Path(pv["spec"]["hostPath"]["path"]) / "blob").write_bytes(os.urandom(5 * MiB))
    os.sync()

    await _measure(provisioner.env)
    used = sample("vessel_volume_used_bytes", lab, "data")
    assert used is not None and 5 * MiB <= used < 6 * MiB
    assert sample("vessel_volume_capacity_bytes", lab, "data") == 64 * MiB
    assert (sample("vessel_volume_used_bytes", lab, "empty") or 0) < MiB
    assert sample("vessel_volume_capacity_bytes", lab, "empty") == 32 * MiB

    await lab.delete_claim("empty")
    await lab.wait_published("volume.deleted")
    await _measure(provisioner.env)
    assert sample("vessel_volume_capacity_bytes", lab, "empty") is None
    assert sample("vessel_volume_capacity_bytes", lab, "data") == 64 * MiB
