"""A direct transfer killed mid-way leaves no snapshot at the destination, and restarted
it sends only what the destination did not store; an abandoned session ends and keeps
what it received; a canceled operation stops its transfer."""

from __future__ import annotations

import asyncio
import random
import uuid
from pathlib import Path

import pytest

from services.mover.cancels import CANCELED, Cancels
from services.mover.repo.format import IndexDoc
from services.mover.repo.repository import Repository
from services.mover.repo.restorer import Restorer
from tests.mover.xferkit import PREFIX, Pause, make_repositories, running, write_files
from vessel.bus.nats_port import Bus
from vessel.contracts.protection import OperationCanceled
from vessel.stopping import cancel_and_wait
from vessel_dev.rig.processes import S3Server
from vessel_dev.rig.scenario import tree_digest

pytestmark = pytest.mark.timeout(90)
TOTAL = 6 * 1_000_000


def stored_data_bytes(repo: Repository) -> int:
    """Plaintext bytes of the data blobs the repository's index holds."""
    total = 0
    for name in repo.store.list(repo.path("index") + "/"):
        doc = repo.load_doc("index", name.rsplit("/", 1)[1], IndexDoc)
        total += sum(b.raw_length for p in doc.packs for b in p.blobs if b.type == "data")
    return total


async def test_a_killed_transfer_resumes_without_resending_stored_blobs(
    bus: Bus, s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = make_repositories(s3_server)
    data = tmp_path / "data"
    write_files(data, {f"part-{i}.bin": TOTAL // 6 for i in range(6)})
    pause = Pause(monkeypatch, at=50)  # about half the volume (64 KiB chunks) sent
    async with running(bus, a, b) as clusters:
        snapshot, _ = await asyncio.to_thread(clusters.source.backup, data, None, {}, None)
        command = clusters.command(snapshot)
        sending = asyncio.create_task(clusters.sender.send(command))
        assert await pause.reached_in_time()
        sending.cancel()  # the source mover dies mid-transfer
        await asyncio.gather(sending, return_exceptions=True)
        pause.release.set()

        assert await asyncio.to_thread(b.list, f"{PREFIX}/snapshots/") == []
        assert await clusters.transfers.get(f"{command.cluster}.{command.transfer_id}") is None
        stored = await asyncio.to_thread(stored_data_bytes, clusters.target_repository())
        assert stored >= 1_000_000  # several full packs reached bucket B

        await clusters.sender.send(command)  # redelivered after the restart
        result = await clusters.result(command.transfer_id)

    assert result.error == "", result
    # Only what B had not stored travels again (plus ids and framing).
    assert result.bytes <= TOTAL - stored + 100_000, (result.bytes, stored)
    target = clusters.target_repository()
    assert list(target.snapshots()) == [result.snapshot_id]
    await asyncio.to_thread(Restorer(target).restore, result.snapshot_id, tmp_path / "out")
    assert tree_digest(tmp_path / "out") == tree_digest(data)


async def test_an_abandoned_session_stores_what_arrived_and_lets_go(
    bus: Bus, s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = make_repositories(s3_server, target_pack_size=16 << 20)  # no pack fills up
    data = tmp_path / "data"
    data.mkdir()
    # Seeded data: its chunk boundaries, and so its number of blobs (~30), are the same on
    # every run, and the pause below is always reached.
    (data / "part.bin").write_bytes(random.Random(24).randbytes(2_000_000))
    pause = Pause(monkeypatch, at=16)  # a frame or more arrived, still in an open pack
    async with running(bus, a, b, idle=1.0) as clusters:
        snapshot, _ = await asyncio.to_thread(clusters.source.backup, data, None, {}, None)
        sending = asyncio.create_task(clusters.sender.send(clusters.command(snapshot)))
        assert await pause.reached_in_time()
        await cancel_and_wait([sending])
        pause.release.set()
        assert await asyncio.to_thread(b.list, f"{PREFIX}/index/") == []
        assert await asyncio.to_thread(b.list, f"{PREFIX}/locks/")  # the session holds a lock
        for _ in range(100):  # the reaper ends the session after a second without requests
            if not await asyncio.to_thread(b.list, f"{PREFIX}/locks/"):
                break
            await asyncio.sleep(0.1)
        assert await asyncio.to_thread(b.list, f"{PREFIX}/locks/") == []
        assert clusters.receiver.sessions == {}
    # The pack being written when the source vanished was stored, with its index.
    assert len(await asyncio.to_thread(b.list, f"{PREFIX}/index/")) == 1
    assert len(await asyncio.to_thread(b.list, f"{PREFIX}/data/")) == 1
    assert await asyncio.to_thread(b.list, f"{PREFIX}/snapshots/") == []


async def test_a_canceled_operation_stops_its_send(
    bus: Bus, s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = make_repositories(s3_server)
    data = tmp_path / "data"
    write_files(data, {"part.bin": 2_000_000})
    pause = Pause(monkeypatch, at=5)
    async with running(bus, a, b) as clusters:
        kv = await bus.kv(f"canceled_{uuid.uuid4().hex[:8]}")
        cancels = Cancels(kv, clusters.source_cluster)
        clusters.sender.cancels = cancels
        snapshot, _ = await asyncio.to_thread(clusters.source.backup, data, None, {}, None)
        command = clusters.command(snapshot)
        sending = asyncio.create_task(clusters.sender.send(command))
        assert await pause.reached_in_time()
        await cancels.on_canceled(
            OperationCanceled(operation_id=command.operation_id, kind="backup")
        )
        pause.release.set()
        await sending
        result = await clusters.result(command.transfer_id)
        assert clusters.receiver.sessions == {}  # the source closed its session
    assert result.error == CANCELED
    assert result.bytes == 0
    assert await asyncio.to_thread(b.list, f"{PREFIX}/snapshots/") == []
    assert await asyncio.to_thread(b.list, f"{PREFIX}/locks/") == []
