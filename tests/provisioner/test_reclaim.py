"""Reclaim policies against the emulated API server, real NATS and a real dir backend:
`Delete` removes backend volume then PV; `Retain` keeps both; restarts finish the job."""

from __future__ import annotations

import asyncio
import json

from services.provisioner.adapters.dirfs import DirBackend
from tests.provisioner.lab import Lab, wait_for


async def test_a_claim_gets_a_volume_a_pv_and_one_provisioned_event(
    lab: Lab, dir_backend: DirBackend
) -> None:
    await lab.start()
    sc = await lab.storage_class("std")
    await lab.claim("data", sc, "64Mi")
    claim, pv = await lab.bound("data")
    volume_id = pv["metadata"]["name"]
    assert volume_id == f"pvc-{claim['metadata']['uid']}"
    assert pv["spec"]["hostPath"]["path"] == str(dir_backend.root / volume_id)
    assert pv["metadata"]["annotations"]["vessel.io/pool"] == "default"
    info = dir_backend.get_volume(volume_id)
    assert info is not None and info.size_bytes == 64 << 20
    [event] = await lab.wait_published("volume.provisioned")
    assert (event["claim"], event["volume_id"], event["backend"]) == ("data", volume_id, "local")
    record = await lab.record(volume_id)
    assert record is not None and record["state"] == "Bound"
    await asyncio.sleep(1.5)  # a resync passes: nothing happens twice
    assert len(lab.published("volume.provisioned")) == 1


async def test_reclaim_delete_removes_the_backend_volume_then_the_pv(
    lab: Lab, dir_backend: DirBackend
) -> None:
    await lab.start()
    sc = await lab.storage_class("gone", reclaimPolicy="Delete")
    await lab.claim("scratch", sc)
    _, pv = await lab.bound("scratch")
    volume_id = pv["metadata"]["name"]
    (dir_backend.root / volume_id / "file").write_bytes(b"x" * 1000)
    await lab.delete_claim("scratch")
    [deleted] = await lab.wait_published("volume.deleted")
    assert deleted["volume_id"] == volume_id and deleted["reason"] == "released"
    assert dir_backend.get_volume(volume_id) is None
    assert not (dir_backend.root / volume_id).exists()
    await wait_for(lambda: _gone(lab, volume_id), "PV deleted")
    assert await lab.record(volume_id) is None
    await asyncio.sleep(1.5)
    assert len(lab.published("volume.deleted")) == 1


async def _gone(lab: Lab, pv_name: str) -> bool:
    return await lab.get_pv(pv_name) is None


async def test_reclaim_retain_keeps_the_volume_and_the_released_pv(
    lab: Lab, dir_backend: DirBackend
) -> None:
    await lab.start()
    sc = await lab.storage_class("keep", reclaimPolicy="Retain")
    await lab.claim("precious", sc)
    _, pv = await lab.bound("precious")
    volume_id = pv["metadata"]["name"]
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    (dir_backend.root / volume_id / "keep.txt").write_text("keep me")
    await lab.delete_claim("precious")
    [retained] = await lab.wait_published("volume.retained")
    assert retained["volume_id"] == volume_id
    assert retained["path"] == str(dir_backend.root / volume_id)
    await asyncio.sleep(1.5)
    kept = await lab.get_pv(volume_id)
    assert kept is not None and kept["status"]["phase"] == "Released"
    assert (dir_backend.root / volume_id / "keep.txt").read_text() == "keep me"
    record = await lab.record(volume_id)
    assert record is not None and record["state"] == "Retained"
    assert len(lab.published("volume.retained")) == 1
    assert not lab.published("volume.deleted")


async def test_a_claim_deleted_while_the_provisioner_is_down_is_reclaimed_on_restart(
    lab: Lab, dir_backend: DirBackend
) -> None:
    await lab.start()
    sc = await lab.storage_class("restart")
    await lab.claim("while-down", sc)
    _, pv = await lab.bound("while-down")
    volume_id = pv["metadata"]["name"]
    await lab.stop()
    await lab.delete_claim("while-down")
    await wait_for(lambda: _released(lab, volume_id), "PV released")
    await lab.start()
    await lab.wait_published("volume.deleted")
    await wait_for(lambda: _gone(lab, volume_id), "PV deleted")
    assert dir_backend.get_volume(volume_id) is None


async def _released(lab: Lab, pv_name: str) -> bool:
    pv = await lab.get_pv(pv_name)
    return pv is not None and pv["status"].get("phase") == "Released"


async def test_a_deletion_interrupted_after_the_pv_went_is_finished_on_restart(
    lab: Lab, dir_backend: DirBackend
) -> None:
    """The record says Deleting, the PV is gone, the backend volume is still there."""
    await lab.start()
    sc = await lab.storage_class("half")
    await lab.claim("half", sc)
    _, pv = await lab.bound("half")
    volume_id = pv["metadata"]["name"]
    await lab.stop()
    assert lab.volumes_kv is not None
    key = f"{lab.cluster}.{volume_id}"
    entry = await lab.volumes_kv.get(key)
    assert entry is not None
    record = json.loads(entry.value) | {"state": "Deleting"}
    await lab.volumes_kv.put(key, json.dumps(record).encode())
    await lab.delete_claim("half")
    await wait_for(lambda: _released(lab, volume_id), "PV released")
    await lab.kube.delete("v1", "PersistentVolume", volume_id)
    await wait_for(lambda: _gone(lab, volume_id), "PV deleted")
    assert dir_backend.get_volume(volume_id) is not None
    await lab.start()
    await lab.wait_published("volume.deleted")
    assert dir_backend.get_volume(volume_id) is None
    assert await lab.record(volume_id) is None
