"""Direct transfer between two movers: a snapshot of cluster A's repository reaches
cluster B's repository over the bus, each mover holding only its own bucket, and only
the blobs B lacks travel."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.mover.repo.restorer import Restorer
from tests.mover.xferkit import Clusters, make_repositories, running, write_files
from vessel.bus.nats_port import Bus
from vessel.contracts import subjects
from vessel.contracts.events import TransferResult
from vessel_dev.rig.processes import S3Server
from vessel_dev.rig.scenario import tree_digest

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def clusters(bus: Bus, s3_server: S3Server) -> AsyncIterator[Clusters]:
    a, b = make_repositories(s3_server)
    async with running(bus, a, b) as pair:
        yield pair


def volume(root: Path) -> Path:
    write_files(root, {"big.bin": 1_500_000, "db/table.bin": 700_000, "db/wal.bin": 90_000})
    for i in range(20):
        (root / "small" / f"f{i:02d}.txt").parent.mkdir(parents=True, exist_ok=True)
        (root / "small" / f"f{i:02d}.txt").write_text(f"small file {i}\n" * (i + 1))
    (root / "empty").write_bytes(b"")
    (root / "link").symlink_to("db/table.bin")
    return root


async def test_sent_snapshot_restores_identical_and_the_next_sends_only_new_blobs(
    clusters: Clusters, bus: Bus, tmp_path: Path
) -> None:
    data = volume(tmp_path / "data")
    first, _ = await asyncio.to_thread(clusters.source.backup, data, None, {}, None)
    since = datetime.now(UTC)

    await clusters.sender.send(clusters.command(first, "send-1"))

    result = await clusters.result("send-1")
    assert result.error == "" and result.direction == "copy", result
    assert 2_290_000 <= result.bytes < 2_600_000  # the files once, plus ids and framing
    target = clusters.target_repository()
    snapshots = target.snapshots()
    assert list(snapshots) == [result.snapshot_id]
    assert snapshots[result.snapshot_id].tags["copied_from"] == first
    await asyncio.to_thread(Restorer(target).restore, result.snapshot_id, tmp_path / "out1")
    assert tree_digest(tmp_path / "out1") == tree_digest(data)
    async with asyncio.timeout(10):  # announced like every transfer
        async for _, event in bus.tail(subjects.TRANSFER_COMPLETED.filter_subject, since=since):
            if event.data["transfer_id"] == "send-1":
                assert TransferResult.model_validate(event.data) == result
                break

    # Most data unchanged: only the new and changed chunks travel.
    (data / "db" / "wal.bin").write_bytes(os.urandom(90_000))
    (data / "new.bin").write_bytes(os.urandom(120_000))
    second, _ = await asyncio.to_thread(clusters.source.backup, data, first, {}, None)
    await clusters.sender.send(clusters.command(second, "send-2"))

    again = await clusters.result("send-2")
    assert again.error == "", again
    assert 210_000 <= again.bytes < 300_000, again.bytes  # not the 2.3 MB already there
    target = clusters.target_repository()
    assert set(target.snapshots()) == {result.snapshot_id, again.snapshot_id}
    await asyncio.to_thread(Restorer(target).restore, again.snapshot_id, tmp_path / "out2")
    assert tree_digest(tmp_path / "out2") == tree_digest(data)


async def test_a_repeated_send_reuses_the_copy_and_sends_no_data(
    clusters: Clusters, tmp_path: Path
) -> None:
    data = volume(tmp_path / "data")
    snapshot, _ = await asyncio.to_thread(clusters.source.backup, data, None, {}, None)
    await clusters.sender.send(clusters.command(snapshot, "send-1"))
    first = await clusters.result("send-1")

    await clusters.sender.send(clusters.command(snapshot, "send-1"))  # redelivered
    await clusters.sender.send(clusters.command(snapshot, "send-again"))  # asked again

    assert await clusters.result("send-1") == first
    repeated = await clusters.result("send-again")
    assert repeated.error == "" and repeated.snapshot_id == first.snapshot_id
    assert repeated.bytes == 0
    assert list(clusters.target_repository().snapshots()) == [first.snapshot_id]


async def test_blobs_larger_than_a_frame_travel_in_pieces(
    bus: Bus, s3_server: S3Server, tmp_path: Path
) -> None:
    a, b = make_repositories(s3_server)
    data = volume(tmp_path / "data")
    async with running(bus, a, b, frame_bytes=40_000) as clusters:  # chunks: 16-256 KiB
        snapshot, _ = await asyncio.to_thread(clusters.source.backup, data, None, {}, None)
        await clusters.sender.send(clusters.command(snapshot))
        result = await clusters.result("send-1")
    assert result.error == "", result
    target = clusters.target_repository()
    await asyncio.to_thread(Restorer(target).restore, result.snapshot_id, tmp_path / "out")
    assert tree_digest(tmp_path / "out") == tree_digest(data)


async def test_nothing_readable_crosses_the_bus(
    clusters: Clusters, bus: Bus, tmp_path: Path
) -> None:
    """A listener on the transfer subjects sees neither file content nor blob ids."""
    data = tmp_path / "data"
    write_files(data, {"secret.bin": 600_000})
    content = (data / "secret.bin").read_bytes()
    snapshot, _ = await asyncio.to_thread(clusters.source.backup, data, None, {}, None)
    seen: list[bytes] = []

    async def listen(_subject: str, body: bytes) -> bytes:
        seen.append(body)
        raise RuntimeError("listening only")  # no reply: the real receiver answers

    spy = await bus.serve(f"vessel.xfer.{clusters.target_cluster}.>", listen)
    try:
        await clusters.sender.send(clusters.command(snapshot))
    finally:
        spy.cancel()
    assert (await clusters.result("send-1")).error == ""
    wire = b"".join(seen)
    assert len(wire) > len(content)  # the listener saw the whole transfer
    samples = [content[i : i + 32] for i in range(0, len(content) - 32, 4096)]
    assert not any(sample in wire for sample in samples)
    source = clusters.source.repository()
    chunk_ids = [
        bytes.fromhex(c)
        for n in source.read_tree(source.snapshots_doc(snapshot).tree).nodes
        for c in n.content
    ]
    assert chunk_ids and not any(chunk_id in wire for chunk_id in chunk_ids)
