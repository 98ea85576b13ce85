"""VolumeSnapshots and clones through Kubernetes, on real btrfs and dir backends."""

from __future__ import annotations

import asyncio
from pathlib import Path

from services.provisioner.adapters.base import StorageBackend
from services.provisioner.adapters.dirfs import DirBackend
from services.provisioner.snapshots import FINALIZER
from tests.provisioner.lab import SNAPSHOT_API, Lab, wait_for
from vessel.config import PROVISIONER_NAME
from vessel.kube.objects import KubeObject

MiB = 1 << 20


async def snapshot_class(lab: Lab, name: str, policy: str = "Delete") -> KubeObject:
    return await lab.kube.create(
        {
            "apiVersion": SNAPSHOT_API,
            "kind": "VolumeSnapshotClass",
            "metadata": {"name": f"{name}-{lab.cluster}"},
            "driver": PROVISIONER_NAME,
            "deletionPolicy": policy,
        }
    )


async def snapshot(lab: Lab, name: str, claim: str, vsclass: KubeObject) -> KubeObject:
    return await lab.kube.create(
        {
            "apiVersion": SNAPSHOT_API,
            "kind": "VolumeSnapshot",
            "metadata": {"name": name, "namespace": lab.namespace},
            "spec": {
                "volumeSnapshotClassName": vsclass["metadata"]["name"],
                "source": {"persistentVolumeClaimName": claim},
            },
        }
    )


async def get_snapshot(lab: Lab, name: str) -> KubeObject | None:
    return await lab.kube.get(SNAPSHOT_API, "VolumeSnapshot", name, lab.namespace)


async def ready(lab: Lab, name: str) -> KubeObject:
    async def check() -> KubeObject | None:
        vs = await get_snapshot(lab, name)
        return vs if (vs or {}).get("status", {}).get("readyToUse") is True else None

    return await wait_for(check, f"snapshot {name} ready")


async def snapshot_gone(lab: Lab, name: str) -> bool:
    return await get_snapshot(lab, name) is None


def from_snapshot(name: str) -> KubeObject:
    return {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": name}


async def volume_with_data(lab: Lab, name: str, sc: KubeObject, text: str) -> tuple[str, Path]:
    await lab.claim(name, sc, "32Mi")
    _, pv = await lab.bound(name)
    path = Path(pv["spec"]["hostPath"]["path"])
    (path / "data.txt").write_text(text)
    return pv["metadata"]["name"], path


async def test_a_snapshot_is_taken_and_a_clone_made_from_it_on_btrfs(btrfs_lab: Lab) -> None:
    lab = btrfs_lab
    await lab.start()
    [backend] = lab.backends
    sc = await lab.storage_class("snap")
    vsclass = await snapshot_class(lab, "snaps")
    volume_id, path = await volume_with_data(lab, "origin", sc, "before")
    vs = await snapshot(lab, "snap-1", "origin", vsclass)
    done = await ready(lab, "snap-1")
    content_name = f"snapcontent-{vs['metadata']['uid']}"
    snapshot_id = f"snapshot-{vs['metadata']['uid']}"
    assert done["status"]["boundVolumeSnapshotContentName"] == content_name
    assert done["status"]["restoreSize"] == "32Mi"
    assert FINALIZER in done["metadata"]["finalizers"]
    content = await lab.kube.get(SNAPSHOT_API, "VolumeSnapshotContent", content_name)
    assert content is not None
    assert content["spec"]["driver"] == PROVISIONER_NAME
    assert content["spec"]["deletionPolicy"] == "Delete"
    assert content["spec"]["volumeSnapshotRef"]["uid"] == vs["metadata"]["uid"]
    assert content["status"]["readyToUse"] is True
    assert content["status"]["snapshotHandle"] == f"fast/{volume_id}/{snapshot_id}"
    [taken] = backend.list_snapshots(volume_id)
    assert taken.snapshot_id == snapshot_id
    [created] = await lab.wait_published("snapshot.created")
    assert created["snapshot"] == "snap-1" and created["content"] == content_name

    (path / "data.txt").write_text("after")
    await lab.claim("restored", sc, "32Mi", dataSource=from_snapshot("snap-1"))
    _, clone_pv = await lab.bound("restored")
    clone_path = Path(clone_pv["spec"]["hostPath"]["path"])
    assert (clone_path / "data.txt").read_text() == "before"
    [clone] = await lab.wait_published("clone.created")
    assert clone["source_kind"] == "VolumeSnapshot" and clone["source_name"] == "snap-1"

    # btrfs clones are independent: the snapshot may go while the clone lives.
    await lab.kube.delete(SNAPSHOT_API, "VolumeSnapshot", "snap-1", lab.namespace)
    await wait_for(lambda: snapshot_gone(lab, "snap-1"), "snapshot deleted")
    assert backend.list_snapshots(volume_id) == []
    assert await lab.kube.get(SNAPSHOT_API, "VolumeSnapshotContent", content_name) is None
    await lab.wait_published("snapshot.deleted")
    assert (clone_path / "data.txt").read_text() == "before"


async def test_a_claim_cloned_from_a_claim_copies_its_data(
    lab: Lab, dir_backend: DirBackend
) -> None:
    await lab.start()
    sc = await lab.storage_class("clone")
    await volume_with_data(lab, "source", sc, "original")
    source = {"kind": "PersistentVolumeClaim", "name": "source"}
    await lab.claim("copy", sc, "64Mi", dataSource=source)
    _, pv = await lab.bound("copy")
    assert (Path(pv["spec"]["hostPath"]["path"]) / "data.txt").read_text() == "original"
    info = dir_backend.get_volume(pv["metadata"]["name"])
    assert info is not None and info.size_bytes == 64 * MiB
    [clone] = await lab.wait_published("clone.created")
    assert clone["source_kind"] == "PersistentVolumeClaim" and clone["source_name"] == "source"


async def test_a_clone_smaller_than_its_source_is_refused(lab: Lab) -> None:
    await lab.start()
    sc = await lab.storage_class("small")
    await volume_with_data(lab, "big-source", sc, "x")
    source = {"kind": "PersistentVolumeClaim", "name": "big-source"}
    await lab.claim("tiny", sc, "16Mi", dataSource=source)
    message = await lab.wait_reason("tiny", "InvalidSize")
    assert f"needs at least {32 * MiB} bytes" in message and str(16 * MiB) in message


async def test_a_clone_of_a_missing_source_waits_with_an_event(lab: Lab) -> None:
    await lab.start()
    sc = await lab.storage_class("missing")
    await lab.claim("orphan-clone", sc, "16Mi", dataSource=from_snapshot("nope"))
    message = await lab.wait_reason("orphan-clone", "InvalidDataSource")
    assert "VolumeSnapshot default/nope does not exist" in message


async def test_retain_keeps_the_backend_snapshot_and_its_content(
    lab: Lab, dir_backend: DirBackend
) -> None:
    await lab.start()
    sc = await lab.storage_class("retain-snap")
    vsclass = await snapshot_class(lab, "keep", "Retain")
    volume_id, _ = await volume_with_data(lab, "kept", sc, "x")
    vs = await snapshot(lab, "kept-snap", "kept", vsclass)
    await ready(lab, "kept-snap")
    await lab.kube.delete(SNAPSHOT_API, "VolumeSnapshot", "kept-snap", lab.namespace)
    await wait_for(lambda: snapshot_gone(lab, "kept-snap"), "snapshot deleted")
    content_name = f"snapcontent-{vs['metadata']['uid']}"
    assert await lab.kube.get(SNAPSHOT_API, "VolumeSnapshotContent", content_name) is not None
    assert len(dir_backend.list_snapshots(volume_id)) == 1
    assert not lab.published("snapshot.deleted")


class DependentCloneBackend(DirBackend):
    """A dir backend that declares its clones depend on their source snapshot."""

    def __init__(self, name: str, root: Path, capacity_bytes: int | None = None) -> None:
        super().__init__(name, root, capacity_bytes)
        self.capabilities = self.capabilities | {"dependent_clones"}


async def test_deleting_a_snapshot_a_clone_depends_on_is_refused(lab: Lab, tmp_path: Path) -> None:
    root = tmp_path / "dependent"
    root.mkdir()
    backend: StorageBackend = DependentCloneBackend("linked", root, 1 << 30)
    await lab.start(backends=[backend])
    sc = await lab.storage_class("linked")
    vsclass = await snapshot_class(lab, "linked")
    volume_id, _ = await volume_with_data(lab, "base", sc, "x")
    await snapshot(lab, "base-snap", "base", vsclass)
    await ready(lab, "base-snap")
    await lab.claim("child", sc, "32Mi", dataSource=from_snapshot("base-snap"))
    await lab.bound("child")
    await lab.kube.delete(SNAPSHOT_API, "VolumeSnapshot", "base-snap", lab.namespace)
    message = await lab.wait_reason("base-snap", "SnapshotDeleteRefused", "VolumeSnapshot")
    assert "default/child" in message
    await asyncio.sleep(1.5)
    held = await get_snapshot(lab, "base-snap")
    assert held is not None and held["metadata"].get("deletionTimestamp")
    assert len(backend.list_snapshots(volume_id)) == 1
    # Once the clone is gone, the snapshot goes too.
    await lab.delete_claim("child")
    await wait_for(lambda: snapshot_gone(lab, "base-snap"), "snapshot deleted", 15)
    assert backend.list_snapshots(volume_id) == []


async def test_a_snapshot_of_a_claim_that_is_not_ours_is_an_event(lab: Lab) -> None:
    await lab.start()
    vsclass = await snapshot_class(lab, "foreign")
    await snapshot(lab, "foreign-snap", "no-such-claim", vsclass)
    message = await lab.wait_reason("foreign-snap", "SnapshotCreationFailed", "VolumeSnapshot")
    assert "no-such-claim is not bound to a Vessel volume" in message
    vs = await get_snapshot(lab, "foreign-snap")
    assert vs is not None and not (vs.get("status") or {}).get("readyToUse")
