"""Group snapshots: several claims' volumes snapshotted back to back as ready
VolumeSnapshots, on real btrfs and dir backends, driven over the bus."""

from __future__ import annotations

import asyncio
import contextlib
import errno
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from services.provisioner.adapters.base import StorageBackend
from services.provisioner.group_snapshots import GROUP_LABEL
from services.provisioner.inbox import group_snapshot_commands, once_ready
from services.provisioner.snapshots import FINALIZER
from tests.provisioner.lab import SNAPSHOT_API, Lab, wait_for
from tests.provisioner.test_snapshots import from_snapshot, snapshot_class
from vessel.contracts import subjects
from vessel.contracts.group_snapshots import GroupClaim, SnapshotGroup
from vessel.kube.objects import KubeObject
from vessel.stopping import cancel_and_wait

CLAIMS = ("db", "logs", "media")


@contextlib.asynccontextmanager
async def serving_groups(lab: Lab) -> AsyncIterator[None]:
    provisioner = lab.provisioner
    assert provisioner is not None
    row = group_snapshot_commands(provisioner.env, provisioner.groups)
    task = asyncio.create_task(once_ready(lab.bus, provisioner.ready, [row]).run())
    try:
        yield
    finally:
        await cancel_and_wait([task])


async def app_volumes(lab: Lab) -> tuple[KubeObject, dict[str, Path]]:
    """A class and three bound claims, each holding its own name in a file."""
    await lab.start()
    sc = await lab.storage_class("group")
    paths = {}
    for name in CLAIMS:
        await lab.claim(name, sc, "32Mi")
    for name in CLAIMS:
        _, pv = await lab.bound(name)
        paths[name] = Path(pv["spec"]["hostPath"]["path"])
        (paths[name] / "data.txt").write_text(f"{name} before")
    return sc, paths


def command(lab: Lab, group: str, claims: tuple[str, ...] = CLAIMS, **fields: Any) -> SnapshotGroup:
    return SnapshotGroup(
        operation_id=f"op-{group}",
        group_id=group,
        claims=[GroupClaim(namespace=lab.namespace, claim=c) for c in claims],
        **fields,
    )


async def take_over_bus(lab: Lab, cmd: SnapshotGroup, verb: str = "created") -> dict[str, Any]:
    await lab.bus.publish(subjects.SNAPSHOT_GROUP, cmd, cluster=lab.cluster)

    async def answered() -> dict[str, Any] | None:
        found = [
            r for r in lab.published(f"snapshot.group.{verb}") if r["group_id"] == cmd.group_id
        ]
        return found[0] if found else None

    return await wait_for(answered, f"group {cmd.group_id} {verb}")


async def check_group(lab: Lab, result: dict[str, Any], group: str) -> list[KubeObject]:
    """Every member is a ready, labelled VolumeSnapshot whose data is the frozen image."""
    assert [m["claim"] for m in result["members"]] == list(CLAIMS)
    assert 0 < result["spread_seconds"] < 10
    listed, _ = await lab.kube.list(SNAPSHOT_API, "VolumeSnapshot", lab.namespace)
    mine = [vs for vs in listed if (vs["metadata"].get("labels") or {}).get(GROUP_LABEL) == group]
    assert sorted(vs["metadata"]["name"] for vs in mine) == sorted(
        m["volume_snapshot"] for m in result["members"]
    )
    for member in result["members"]:
        assert member["error"] == ""
        vs = await lab.kube.get(
            SNAPSHOT_API, "VolumeSnapshot", member["volume_snapshot"], lab.namespace
        )
        assert vs is not None and vs["status"]["readyToUse"] is True
        assert vs["spec"]["source"]["persistentVolumeClaimName"] == member["claim"]
        assert FINALIZER in vs["metadata"]["finalizers"]
        assert member["snapshot_id"] == f"snapshot-{vs['metadata']['uid']}"
        content = await lab.kube.get(
            SNAPSHOT_API, "VolumeSnapshotContent", vs["status"]["boundVolumeSnapshotContentName"]
        )
        assert content is not None and content["status"]["readyToUse"] is True
        assert content["metadata"]["labels"][GROUP_LABEL] == group
        assert member["bytes"] == 32 << 20
        assert (Path(member["path"]) / "data.txt").read_text() == f"{member['claim']} before"
    return mine


async def test_a_group_on_btrfs_is_read_only_ready_and_idempotent(btrfs_lab: Lab) -> None:
    lab = btrfs_lab
    _, paths = await app_volumes(lab)
    [backend] = lab.backends
    vsclass = await snapshot_class(lab, "group")
    async with serving_groups(lab):
        cmd = command(lab, "app-snap-1", snapshot_class=vsclass["metadata"]["name"])
        result = await take_over_bus(lab, cmd)
    await check_group(lab, result, "app-snap-1")
    for member in result["members"]:
        frozen = Path(member["path"])
        with pytest.raises(OSError) as refused:
            (frozen / "data.txt").write_text("changed")
        assert refused.value.errno == errno.EROFS
        (paths[member["claim"]] / "data.txt").write_text("after")
        assert (frozen / "data.txt").read_text() == f"{member['claim']} before"
    assert len(lab.published("snapshot.created")) == len(CLAIMS)

    # A redelivered command finds the group: no new snapshot, the same answer.
    assert lab.provisioner is not None
    again = (await lab.provisioner.groups.snapshot(cmd)).model_dump()
    assert again["members"] == result["members"]
    assert again["spread_seconds"] == result["spread_seconds"]
    for name in CLAIMS:
        volume = (await lab.get_claim(name) or {})["spec"]["volumeName"]
        assert len(backend.list_snapshots(volume)) == 1


async def test_a_group_on_dir_serves_clones_and_reports_each_claim(lab: Lab) -> None:
    sc, paths = await app_volumes(lab)
    async with serving_groups(lab):
        result = await take_over_bus(lab, command(lab, "app-snap-2"))
        await check_group(lab, result, "app-snap-2")
        partial = await take_over_bus(lab, command(lab, "app-snap-3", ("db", "missing")))
        failed = await take_over_bus(lab, command(lab, "app-snap-4", ("gone",)), "failed")
    db = result["members"][0]
    (paths["db"] / "data.txt").write_text("after")
    assert (Path(db["path"]) / "data.txt").read_text() == "db before"
    await lab.claim("db-copy", sc, "32Mi", dataSource=from_snapshot(db["volume_snapshot"]))
    _, pv = await lab.bound("db-copy")
    assert (Path(pv["spec"]["hostPath"]["path"]) / "data.txt").read_text() == "db before"

    ok, missing = partial["members"]
    assert ok["error"] == "" and (Path(ok["path"]) / "data.txt").read_text() == "db before"
    assert missing["volume_snapshot"] == "" and "missing does not exist" in missing["error"]
    assert partial["error"] == ""
    assert failed["error"] and "gone does not exist" in failed["members"][0]["error"]


async def test_a_group_without_vessel_volumes_leaves_nothing_behind(
    lab: Lab, dir_backend: StorageBackend
) -> None:
    await lab.start()
    async with serving_groups(lab):
        failed = await take_over_bus(
            lab, command(lab, "app-snap-5", ("nothing",), snapshot_class="no-such"), "failed"
        )
    assert failed["error"] == "VolumeSnapshotClass no-such does not exist"
    listed, _ = await lab.kube.list(SNAPSHOT_API, "VolumeSnapshot", lab.namespace)
    assert listed == []
