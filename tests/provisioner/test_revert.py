"""Reverting a claim's volume in place to a VolumeSnapshot (annotation vessel.io/revert-to),
on real btrfs and dir backends, through the emulated API server and real NATS."""

from __future__ import annotations

import asyncio
from pathlib import Path

from services.provisioner.adapters.base import StorageBackend
from services.provisioner.adapters.dirfs import DirBackend
from services.provisioner.revert import REVERT_TO, REVERTED_TO
from tests.provisioner.lab import SNAPSHOT_API, Lab, wait_for
from tests.provisioner.test_snapshots import ready, snapshot, snapshot_class, volume_with_data
from vessel.kube.objects import KubeObject


async def annotate(lab: Lab, name: str, annotations: dict[str, str | None]) -> None:
    await lab.kube.patch(
        "v1",
        "PersistentVolumeClaim",
        name,
        lab.namespace,
        {"metadata": {"annotations": annotations}},
    )


async def reverted(lab: Lab, name: str) -> KubeObject:
    async def check() -> KubeObject | None:
        claim = await lab.get_claim(name)
        annotations = (claim or {}).get("metadata", {}).get("annotations") or {}
        return claim if REVERTED_TO in annotations and REVERT_TO not in annotations else None

    return await wait_for(check, f"claim {name} reverted")


async def revert_round(lab: Lab) -> None:
    sc = await lab.storage_class("revert")
    vsclass = await snapshot_class(lab, "revert")
    volume_id, path = await volume_with_data(lab, "db", sc, "v1")
    vs = await snapshot(lab, "db-v1", "db", vsclass)
    await ready(lab, "db-v1")
    (path / "data.txt").write_text("v2")
    (path / "extra.txt").write_text("later")
    await annotate(lab, "db", {REVERT_TO: "db-v1"})
    claim = await reverted(lab, "db")
    outcome = claim["metadata"]["annotations"][REVERTED_TO]
    assert outcome.startswith("db-v1@")
    assert (path / "data.txt").read_text() == "v1"
    assert not (path / "extra.txt").exists()
    [event] = await lab.wait_published("snapshot.reverted")
    assert event["claim"] == "db" and event["snapshot"] == "db-v1"
    assert event["namespace"] == lab.namespace and event["volume_id"] == volume_id
    assert event["snapshot_id"] == f"snapshot-{vs['metadata']['uid']}"
    message = await lab.wait_reason("db", "VolumeReverted")
    assert "db-v1" in message and volume_id in message
    record = await lab.record(volume_id)
    assert record is not None and record["reverted_to"] == outcome

    # Redelivered and resynced: the same request does not revert twice.
    (path / "data.txt").write_text("v3")
    assert lab.provisioner is not None
    lab.provisioner.sweep()
    await asyncio.sleep(1.5)
    assert (path / "data.txt").read_text() == "v3"
    assert len(lab.published("snapshot.reverted")) == 1

    # Asking again is a new request: reverted again, a new outcome.
    await annotate(lab, "db", {REVERT_TO: "db-v1"})
    again = await wait_for(
        lambda: _outcome_other_than(lab, "db", outcome), "a second revert recorded"
    )
    assert again.startswith("db-v1@")
    assert (path / "data.txt").read_text() == "v1"
    await lab.wait_published("snapshot.reverted", 2)


async def _outcome_other_than(lab: Lab, name: str, outcome: str) -> str | None:
    claim = await lab.get_claim(name)
    annotations = (claim or {}).get("metadata", {}).get("annotations") or {}
    value = annotations.get(REVERTED_TO)
    return value if value and value != outcome and REVERT_TO not in annotations else None


async def test_a_volume_is_reverted_in_place_on_btrfs(btrfs_lab: Lab) -> None:
    await btrfs_lab.start()
    await revert_round(btrfs_lab)


async def test_a_volume_is_reverted_in_place_on_dir(lab: Lab) -> None:
    await lab.start()
    await revert_round(lab)


async def test_refused_reverts_are_warnings_and_a_corrected_name_is_retried(lab: Lab) -> None:
    await lab.start()
    sc = await lab.storage_class("refuse")
    vsclass = await snapshot_class(lab, "refuse")
    volume_id, path = await volume_with_data(lab, "mine", sc, "mine-v1")
    await volume_with_data(lab, "theirs", sc, "theirs-v1")
    await snapshot(lab, "theirs-snap", "theirs", vsclass)
    await ready(lab, "theirs-snap")

    await annotate(lab, "mine", {REVERT_TO: "nope"})
    message = await lab.wait_reason("mine", "RevertFailed")
    assert "VolumeSnapshot default/nope does not exist" in message and REVERT_TO in message

    await annotate(lab, "mine", {REVERT_TO: "theirs-snap"})
    message = await wait_for(
        lambda: _reason_containing(lab, "mine", "RevertFailed", "theirs-snap"), "other volume"
    )
    assert "claim default/theirs" in message and f"this claim's volume {volume_id}" in message
    claim = await lab.get_claim("mine")
    assert claim is not None and claim["metadata"]["annotations"][REVERT_TO] == "theirs-snap"
    assert (path / "data.txt").read_text() == "mine-v1"

    # A snapshot that is not ready (its class is unknown, so it is never taken) is refused.
    pending: KubeObject = {
        "apiVersion": SNAPSHOT_API,
        "kind": "VolumeSnapshot",
        "metadata": {"name": "mine-pending", "namespace": lab.namespace},
        "spec": {
            "volumeSnapshotClassName": "no-such-class",
            "source": {"persistentVolumeClaimName": "mine"},
        },
    }
    await lab.kube.create(pending)
    await annotate(lab, "mine", {REVERT_TO: "mine-pending"})
    message = await wait_for(
        lambda: _reason_containing(lab, "mine", "RevertFailed", "mine-pending"), "not ready"
    )
    assert "is not a Vessel snapshot ready to use (yet)" in message

    # An unknown name, then the snapshot appears: the same request is retried and done.
    (path / "data.txt").write_text("mine-v2")
    await annotate(lab, "mine", {REVERT_TO: "mine-snap"})
    await wait_for(
        lambda: _reason_containing(lab, "mine", "RevertFailed", "mine-snap"), "unknown snapshot"
    )
    await snapshot(lab, "mine-snap", "mine", vsclass)
    await reverted(lab, "mine")
    assert (path / "data.txt").read_text() == "mine-v2"
    [event] = await lab.wait_published("snapshot.reverted")
    assert event["snapshot"] == "mine-snap"


async def _reason_containing(lab: Lab, name: str, reason: str, text: str) -> str | None:
    """Any Event `reason` on the claim whose message contains `text`."""
    events, _ = await lab.kube.list("v1", "Event", lab.namespace)
    for event in events:
        involved = event.get("involvedObject") or {}
        message = str(event.get("message") or "")
        if involved.get("name") == name and event.get("reason") == reason and text in message:
            return message
    return None


class NoRevertBackend(DirBackend):
    """A dir backend without the `revert` capability."""

    def __init__(self, name: str, root: Path, capacity_bytes: int | None = None) -> None:
        super().__init__(name, root, capacity_bytes)
        self.capabilities = self.capabilities - {"revert"}


async def test_a_backend_without_revert_is_a_warning(lab: Lab, tmp_path: Path) -> None:
    root = tmp_path / "norevert"
    root.mkdir()
    backend: StorageBackend = NoRevertBackend("plain", root, 1 << 30)
    await lab.start(backends=[backend])
    sc = await lab.storage_class("norevert")
    vsclass = await snapshot_class(lab, "norevert")
    await volume_with_data(lab, "fixed", sc, "x")
    await snapshot(lab, "fixed-snap", "fixed", vsclass)
    await ready(lab, "fixed-snap")
    await annotate(lab, "fixed", {REVERT_TO: "fixed-snap"})
    message = await lab.wait_reason("fixed", "RevertFailed")
    assert "backend plain (dir) cannot revert volumes (no 'revert' capability)" in message
    await asyncio.sleep(1.2)
    claim = await lab.get_claim("fixed")
    assert claim is not None and claim["metadata"]["annotations"][REVERT_TO] == "fixed-snap"
    assert not lab.published("snapshot.reverted")
