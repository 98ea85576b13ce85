"""Clones across namespaces through an explicit grant on the source
(annotation vessel.io/clone-grant-namespaces), on real dir and btrfs backends."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from services.provisioner.grants import GRANT_ANNOTATION
from tests.provisioner.lab import SNAPSHOT_API, Lab, wait_for
from tests.provisioner.test_snapshots import ready, snapshot, snapshot_class, volume_with_data
from vessel.kube.errors import AlreadyExists
from vessel.kube.objects import KubeObject


async def namespace(lab: Lab, name: str) -> None:
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    with contextlib.suppress(AlreadyExists):
        await lab.kube.create(body)


async def foreign_claim(
    lab: Lab, namespace_: str, name: str, sc: KubeObject, ref: KubeObject
) -> KubeObject:
    await namespace(lab, namespace_)
    return await lab.kube.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": namespace_},
            "spec": {
                "storageClassName": sc["metadata"]["name"],
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "32Mi"}},
                "dataSourceRef": ref,
            },
        }
    )


async def warning(lab: Lab, namespace: str, name: str, reason: str, text: str = "") -> str:
    async def check() -> str | None:
        events, _ = await lab.kube.list("v1", "Event", namespace)
        for event in events:
            involved = event.get("involvedObject") or {}
            message = str(event.get("message") or "")
            if involved.get("name") == name and event.get("reason") == reason and text in message:
                return message
        return None

    return await wait_for(check, f"event {reason} on {namespace}/{name}")


async def bound_in(lab: Lab, namespace: str, name: str) -> Path:
    async def check() -> KubeObject | None:
        claim = await lab.kube.get("v1", "PersistentVolumeClaim", name, namespace)
        return claim if (claim or {}).get("status", {}).get("phase") == "Bound" else None

    claim = await wait_for(check, f"claim {namespace}/{name} bound")
    pv = await lab.get_pv(claim["spec"]["volumeName"])
    assert pv is not None
    return Path(pv["spec"]["hostPath"]["path"])


async def phase(lab: Lab, namespace: str, name: str) -> str:
    claim = await lab.kube.get("v1", "PersistentVolumeClaim", name, namespace)
    assert claim is not None
    return str((claim.get("status") or {}).get("phase", "Pending"))


async def grant(lab: Lab, api_version: str, kind: str, name: str, namespaces: str) -> None:
    patch = {"metadata": {"annotations": {GRANT_ANNOTATION: namespaces}}}
    await lab.kube.patch(api_version, kind, name, lab.namespace, patch)


async def test_a_claim_is_cloned_into_another_namespace_once_granted(lab: Lab) -> None:
    await lab.start()
    sc = await lab.storage_class("xns")
    await volume_with_data(lab, "shared", sc, "shared data")
    ref = {"kind": "PersistentVolumeClaim", "name": "shared", "namespace": lab.namespace}
    await foreign_claim(lab, "team-b", "copy", sc, ref)
    message = await warning(lab, "team-b", "copy", "CloneNotGranted")
    assert f"PersistentVolumeClaim {lab.namespace}/shared" in message
    assert f"{GRANT_ANNOTATION}=team-b" in message
    await asyncio.sleep(1.2)
    assert await phase(lab, "team-b", "copy") == "Pending"
    assert not lab.published("clone.created")

    # A grant naming other namespaces is not enough, and the message lists what it grants.
    await grant(lab, "v1", "PersistentVolumeClaim", "shared", "team-x")
    message = await warning(lab, "team-b", "copy", "CloneNotGranted", "it lists: team-x")
    assert await phase(lab, "team-b", "copy") == "Pending"

    await grant(lab, "v1", "PersistentVolumeClaim", "shared", "team-x, team-b")
    path = await bound_in(lab, "team-b", "copy")
    assert (path / "data.txt").read_text() == "shared data"
    [clone] = await lab.wait_published("clone.created")
    assert clone["namespace"] == "team-b" and clone["source_name"] == "shared"


async def test_a_snapshot_is_cloned_into_another_namespace_on_btrfs(btrfs_lab: Lab) -> None:
    lab = btrfs_lab
    await lab.start()
    sc = await lab.storage_class("xns-snap")
    vsclass = await snapshot_class(lab, "xns-snap")
    _, path = await volume_with_data(lab, "golden", sc, "golden image")
    await snapshot(lab, "golden-snap", "golden", vsclass)
    await ready(lab, "golden-snap")
    (path / "data.txt").write_text("changed later")
    ref = {
        "apiGroup": "snapshot.storage.k8s.io",
        "kind": "VolumeSnapshot",
        "name": "golden-snap",
        "namespace": lab.namespace,
    }
    await foreign_claim(lab, "team-c", "restored", sc, ref)
    message = await warning(lab, "team-c", "restored", "CloneNotGranted")
    assert f"VolumeSnapshot {lab.namespace}/golden-snap" in message
    assert await phase(lab, "team-c", "restored") == "Pending"

    await grant(lab, SNAPSHOT_API, "VolumeSnapshot", "golden-snap", "*")
    clone_path = await bound_in(lab, "team-c", "restored")
    assert (clone_path / "data.txt").read_text() == "golden image"
    [clone] = await lab.wait_published("clone.created")
    assert clone["source_kind"] == "VolumeSnapshot" and clone["namespace"] == "team-c"


async def test_only_data_source_ref_may_name_another_namespace(lab: Lab) -> None:
    await lab.start()
    sc = await lab.storage_class("xns-old")
    body = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "legacy", "namespace": "team-d"},
        "spec": {
            "storageClassName": sc["metadata"]["name"],
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "32Mi"}},
            "dataSource": {"kind": "PersistentVolumeClaim", "name": "x", "namespace": "default"},
        },
    }
    await namespace(lab, "team-d")
    await lab.kube.create(body)
    message = await warning(lab, "team-d", "legacy", "InvalidDataSource")
    assert "only dataSourceRef may name another namespace" in message
