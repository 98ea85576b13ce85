"""The mover's copy command: a snapshot moves between two buckets' repositories, only the
data the target lacks, with the outcome announced on the bus."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.mover.repo.restorer import Restorer
from services.mover.transfers import Mover
from services.mover.volumes import RepositoryData
from vessel.bus.nats_port import Bus
from vessel.contracts import subjects
from vessel.contracts.commands import CopySnapshot
from vessel.contracts.events import TransferResult
from vessel.objectstore.local import LocalStore
from vessel.sealed.providers.password import PasswordKey
from vessel_dev.rig.scenario import tree_digest

pytestmark = pytest.mark.timeout(60)


async def test_copy_command_moves_only_missing_data_and_announces_it(
    bus: Bus, tmp_path: Path
) -> None:
    source = RepositoryData(LocalStore(tmp_path / "a"), "repository", PasswordKey("pw-a"))
    target = RepositoryData(
        LocalStore(tmp_path / "b"), "repository", PasswordKey("pw-b"), like=source
    )
    data = tmp_path / "data"
    data.mkdir()
    shared = os.urandom(2 << 20)
    (data / "shared.bin").write_bytes(shared)
    (data / "new.bin").write_bytes(os.urandom(1 << 20))
    snapshot_id, _ = await asyncio.to_thread(source.backup, data, None, {}, None)
    other = tmp_path / "other"
    other.mkdir()
    (other / "shared.bin").write_bytes(shared)
    await asyncio.to_thread(target.backup, other, None, {}, None)  # target has `shared`
    buckets = {"a": source, "b": target}
    mover = Mover("c1", bus, await bus.kv(f"t_{uuid.uuid4().hex[:8]}"), buckets.__getitem__)
    since = datetime.now(UTC)
    command = CopySnapshot(
        transfer_id="copy-1",
        operation_id="op-1",
        cluster="c1",
        source_bucket="a",
        snapshot_id=snapshot_id,
        target_bucket="b",
    )

    await mover.copy(command)
    await mover.copy(command)  # redelivered: answered from the record, nothing copied again

    results = []
    async with asyncio.timeout(10):
        async for _, event in bus.tail(subjects.TRANSFER_COMPLETED.filter_subject, since=since):
            result = TransferResult.model_validate(event.data)
            if result.transfer_id == "copy-1":
                results.append(result)
                if len(results) == 2:
                    break
    assert results[0] == results[1] and results[0].direction == "copy"
    assert (1 << 20) <= results[0].bytes < (3 << 20) // 2  # the new file, not `shared`
    Restorer(target.repository()).restore(results[0].snapshot_id, tmp_path / "out")
    assert tree_digest(tmp_path / "out") == tree_digest(data)
