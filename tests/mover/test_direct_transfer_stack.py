"""The mover processes wired as deployed: cluster-a's mover takes a `send` command from
the bus and cluster-b's mover receives the snapshot (both use the stack's one bucket
here, so the destination already holds every blob and only ids travel)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.mover.repo.repository import Repository
from services.mover.volumes import RepositoryData
from tests.mover.xferkit import write_files
from vessel.bus.nats_port import Bus
from vessel.contracts import subjects
from vessel.contracts.commands import SendSnapshot
from vessel.contracts.events import TransferResult
from vessel.sealed.providers.password import PasswordKey
from vessel_dev.rig.stack import Stack

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with Stack(tmp_path / "stack", btrfs=False) as running:
        yield running


async def test_the_send_command_reaches_the_other_clusters_mover(
    stack: Stack, tmp_path: Path
) -> None:
    store = stack.store()
    source = RepositoryData(store, "repository", PasswordKey(stack.repository_password))
    write_files(tmp_path / "data", {"a.bin": 400_000, "b/c.bin": 300_000})
    snapshot, _ = await asyncio.to_thread(source.backup, tmp_path / "data", None, {}, None)
    bus = Bus("/clusters/test/tests")
    await bus.connect(stack.nats.url, "vessel-tests")
    try:
        since = datetime.now(UTC)
        command = SendSnapshot(
            transfer_id="send-stack",
            operation_id="op-send-stack",
            cluster="cluster-a",
            source_bucket="default",
            snapshot_id=snapshot,
            target_cluster="cluster-b",
            target_bucket="default",
        )
        await bus.publish(subjects.SEND_SNAPSHOT, command, cluster="cluster-a")
        async with asyncio.timeout(60):
            async for _, event in bus.tail("vessel.evt.mover.*.transfer.>", since=since):
                if event.data.get("transfer_id") == "send-stack" and "error" in event.data:
                    result = TransferResult.model_validate(event.data)
                    break
    finally:
        await bus.close()
    assert result.error == "" and result.cluster == "cluster-a", result
    assert 0 < result.bytes < 20_000  # ids and the snapshot document: B has every blob
    repo = Repository.open(store, "repository", PasswordKey(stack.repository_password))
    copied = repo.snapshots_doc(result.snapshot_id)
    assert copied.tags["copied_from"] == snapshot
    assert copied.tree == repo.snapshots_doc(snapshot).tree
