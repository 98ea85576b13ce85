"""Expansion: backend, then PV capacity, then the claim's status; refusals are Events."""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path

from services.provisioner.adapters.base import StorageBackend
from services.provisioner.adapters.dirfs import DirBackend
from tests.provisioner.backend_contract import fill
from tests.provisioner.lab import Lab, wait_for

MiB = 1 << 20


async def resize(lab: Lab, name: str, size: str) -> None:
    patch = {"spec": {"resources": {"requests": {"storage": size}}}}
    await lab.kube.patch("v1", "PersistentVolumeClaim", name, lab.namespace, patch)


async def grown(lab: Lab, backend: StorageBackend, volume_id: str, size: int) -> bool:
    info = backend.get_volume(volume_id)
    return info is not None and info.size_bytes == size


async def test_a_larger_request_grows_backend_then_pv_then_claim_status(
    lab: Lab, dir_backend: DirBackend
) -> None:
    await lab.start()
    sc = await lab.storage_class("grow", allowVolumeExpansion=True)
    await lab.claim("grows", sc, "64Mi")
    _, pv = await lab.bound("grows")
    volume_id = pv["metadata"]["name"]
    await lab.wait_published("volume.provisioned")
    await resize(lab, "grows", "128Mi")
    [event] = await lab.wait_published("volume.expanded")
    assert event["old_size_bytes"] == 64 * MiB and event["new_size_bytes"] == 128 * MiB
    assert event["reason"] == "request" and event["volume_id"] == volume_id
    info = dir_backend.get_volume(volume_id)
    assert info is not None and info.size_bytes == 128 * MiB
    pv_now = await lab.get_pv(volume_id)
    assert pv_now is not None and pv_now["spec"]["capacity"]["storage"] == "128Mi"
    claim = await lab.get_claim("grows")
    assert claim is not None and claim["status"]["capacity"]["storage"] == "128Mi"
    assert "grew from" in await lab.wait_reason("grows", "VolumeResizeSuccessful")
    record = await lab.record(volume_id)
    assert record is not None and record["size_bytes"] == 128 * MiB
    await asyncio.sleep(1.5)
    assert len(lab.published("volume.expanded")) == 1


async def test_btrfs_expansion_raises_the_quota_writes_obey(btrfs_lab: Lab) -> None:
    await btrfs_lab.start()
    [backend] = btrfs_lab.backends
    sc = await btrfs_lab.storage_class("bgrow", allowVolumeExpansion=True)
    await btrfs_lab.claim("quota", sc, "16Mi")
    _, pv = await btrfs_lab.bound("quota")
    path = Path(pv["spec"]["hostPath"]["path"])
    written, error = await asyncio.to_thread(fill, path / "big", 32 * MiB)
    assert error is not None and error.errno in (errno.EDQUOT, errno.ENOSPC)
    assert written <= 16 * MiB
    (path / "big").unlink()
    await resize(btrfs_lab, "quota", "64Mi")
    await btrfs_lab.wait_published("volume.expanded")
    volume_id = pv["metadata"]["name"]
    assert await grown(btrfs_lab, backend, volume_id, 64 * MiB)
    written, error = await asyncio.to_thread(fill, path / "big", 32 * MiB)
    assert error is None and written == 32 * MiB


async def test_expansion_is_refused_when_the_class_does_not_allow_it(
    lab: Lab, dir_backend: DirBackend
) -> None:
    await lab.start()
    sc = await lab.storage_class("fixed")
    await lab.claim("fixed", sc, "64Mi")
    _, pv = await lab.bound("fixed")
    await resize(lab, "fixed", "128Mi")
    message = await lab.wait_reason("fixed", "VolumeResizeFailed")
    assert sc["metadata"]["name"] in message and "allowVolumeExpansion" in message
    info = dir_backend.get_volume(pv["metadata"]["name"])
    assert info is not None and info.size_bytes == 64 * MiB
    assert not lab.published("volume.expanded")


async def test_shrinking_is_refused(lab: Lab, dir_backend: DirBackend) -> None:
    await lab.start()
    sc = await lab.storage_class("shrink", allowVolumeExpansion=True)
    await lab.claim("shrink", sc, "128Mi")
    _, pv = await lab.bound("shrink")
    await lab.wait_published("volume.provisioned")
    await resize(lab, "shrink", "64Mi")
    message = await lab.wait_reason("shrink", "VolumeResizeFailed")
    assert "shrinking" in message and str(128 * MiB) in message and str(64 * MiB) in message
    info = dir_backend.get_volume(pv["metadata"]["name"])
    assert info is not None and info.size_bytes == 128 * MiB


async def test_growing_beyond_the_backend_capacity_is_refused(
    lab: Lab, dir_backend: DirBackend
) -> None:
    await lab.start()
    sc = await lab.storage_class("huge", allowVolumeExpansion=True)
    await lab.claim("huge", sc, "64Mi")
    _, pv = await lab.bound("huge")
    await lab.wait_published("volume.provisioned")
    await resize(lab, "huge", "4Gi")
    message = await lab.wait_reason("huge", "VolumeResizeFailed")
    assert "backend local" in message and "free" in message
    pv_now = await lab.get_pv(pv["metadata"]["name"])
    assert pv_now is not None and pv_now["spec"]["capacity"]["storage"] == "64Mi"
    # Asking for a size that fits afterwards works.
    await resize(lab, "huge", "96Mi")
    await lab.wait_published("volume.expanded")
    volume_id = pv["metadata"]["name"]
    await wait_for(lambda: grown(lab, dir_backend, volume_id, 96 * MiB), "grown to 96Mi")
