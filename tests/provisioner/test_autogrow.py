"""Auto-grow: volumes whose used bytes pass the class's threshold grow by its step, up to
its maximum, through the same path as a requested expansion."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from services.provisioner.adapters.base import StorageBackend
from tests.provisioner.lab import Lab, wait_for

MiB = 1 << 20
POLICY = {"autoGrowThresholdPercent": "50", "autoGrowStep": "16Mi", "autoGrowMaxSize": "48Mi"}


def write(path: Path, size: int) -> None:
    with path.open("wb") as f:
        f.write(os.urandom(size))
        f.flush()
        os.fsync(f.fileno())


async def size_is(backend: StorageBackend, volume_id: str, size: int) -> bool:
    info = backend.get_volume(volume_id)
    return info is not None and info.size_bytes == size


async def test_a_filling_volume_grows_by_steps_up_to_the_maximum(lab: Lab) -> None:
    await lab.start(autogrow_seconds=0.2)
    [backend] = lab.backends
    sc = await lab.storage_class("auto", POLICY, allowVolumeExpansion=True)
    await lab.claim("filling", sc, "16Mi")
    _, pv = await lab.bound("filling")
    volume_id, path = pv["metadata"]["name"], Path(pv["spec"]["hostPath"]["path"])
    await asyncio.sleep(0.5)
    assert not lab.published("volume.expanded")  # empty: below the threshold

    await asyncio.to_thread(write, path / "a", 10 * MiB)  # 10 of 16 MiB: 62%
    [first] = await lab.wait_published("volume.expanded")
    assert first["reason"] == "autogrow"
    assert (first["old_size_bytes"], first["new_size_bytes"]) == (16 * MiB, 32 * MiB)
    assert await size_is(backend, volume_id, 32 * MiB)
    pv_now = await lab.get_pv(volume_id)
    assert pv_now is not None and pv_now["spec"]["capacity"]["storage"] == "32Mi"
    claim = await lab.get_claim("filling")
    assert claim is not None and claim["status"]["capacity"]["storage"] == "32Mi"
    await asyncio.sleep(0.6)
    assert len(lab.published("volume.expanded")) == 1  # 10 of 32 MiB: below

    await asyncio.to_thread(write, path / "b", 10 * MiB)  # 20 of 32 MiB: 62%
    await lab.wait_published("volume.expanded", 2)
    assert await size_is(backend, volume_id, 48 * MiB)
    await asyncio.to_thread(write, path / "c", 10 * MiB)  # 30 of 48 MiB: at the maximum
    await asyncio.sleep(0.6)
    assert len(lab.published("volume.expanded")) == 2
    assert await size_is(backend, volume_id, 48 * MiB)

    # A request below the grown size is not a shrink and changes nothing.
    patch = {"spec": {"resources": {"requests": {"storage": "40Mi"}}}}
    await lab.kube.patch("v1", "PersistentVolumeClaim", "filling", lab.namespace, patch)
    await asyncio.sleep(0.6)
    assert "VolumeResizeFailed" not in await lab.reasons("filling")
    record = await lab.record(volume_id)
    assert record is not None and record["size_bytes"] == 48 * MiB
    assert record["requested_bytes"] == 40 * MiB


async def test_auto_grow_on_btrfs_follows_the_qgroup_usage(btrfs_lab: Lab) -> None:
    await btrfs_lab.start(autogrow_seconds=0.2)
    [backend] = btrfs_lab.backends
    policy = {"autoGrowThresholdPercent": "60", "autoGrowStep": "50%"}
    sc = await btrfs_lab.storage_class("bauto", policy, allowVolumeExpansion=True)
    await btrfs_lab.claim("bfill", sc, "16Mi")
    _, pv = await btrfs_lab.bound("bfill")
    volume_id, path = pv["metadata"]["name"], Path(pv["spec"]["hostPath"]["path"])
    await asyncio.to_thread(write, path / "a", 12 * MiB)
    [grown] = await btrfs_lab.wait_published("volume.expanded")
    assert grown["new_size_bytes"] == 24 * MiB
    await wait_for(lambda: size_is(backend, volume_id, 24 * MiB), "qgroup limit raised")
