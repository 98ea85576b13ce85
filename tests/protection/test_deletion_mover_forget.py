"""The mover's forget command on a real repository in a real S3 bucket: the snapshots go,
the data only they used is pruned, what other snapshots use stays restorable, and repeating
it (or forgetting in a bucket without a repository) succeeds and changes nothing."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.mover.forget import Forgetter
from services.mover.repo.restorer import Restorer
from services.mover.volumes import RepositoryData
from vessel.bus.nats_port import Bus
from vessel.contracts import subjects
from vessel.contracts.commands import ForgetSnapshots
from vessel.contracts.events import SnapshotsForgotten
from vessel.objectstore.minio_port import MinioStore
from vessel.sealed.providers.password import PasswordKey
from vessel_dev.rig.scenario import tree_digest

pytestmark = pytest.mark.timeout(120)


def volume(root: Path, name: str, size: int) -> Path:
    path = root / name
    path.mkdir()
    (path / "data.bin").write_bytes(os.urandom(size))
    return path


async def answers(
    bus: Bus, since: datetime, operation_id: str, count: int
) -> list[SnapshotsForgotten]:
    found: list[SnapshotsForgotten] = []
    async with asyncio.timeout(10):
        async for _, event in bus.tail(subjects.SNAPSHOTS_FORGOTTEN.filter_subject, since=since):
            answer = SnapshotsForgotten.model_validate(event.data)
            if answer.operation_id == operation_id:
                found.append(answer)
                if len(found) == count:
                    return found
    return found


async def test_forget_removes_snapshots_and_prunes_only_their_data(
    bus: Bus, bucket: MinioStore, tmp_path: Path
) -> None:
    data = RepositoryData(bucket, "repository", PasswordKey("pw"))
    gone_src, kept_src = volume(tmp_path, "gone", 3 << 20), volume(tmp_path, "kept", 2 << 20)
    gone, _ = await asyncio.to_thread(data.backup, gone_src, None, {}, None)
    kept, _ = await asyncio.to_thread(data.backup, kept_src, None, {}, None)
    packs_before = bucket.list("repository/data/")
    forgetter = Forgetter("c1", bus, {"default": data}.__getitem__)
    command = ForgetSnapshots(
        operation_id=f"del-{uuid.uuid4().hex[:8]}",
        cluster="c1",
        bucket="default",
        snapshot_ids=[gone],
    )
    since = datetime.now(UTC)

    await forgetter.on_forget(command)
    await forgetter.on_forget(command)  # redelivered: nothing left to do, still answered

    first, second = await answers(bus, since, command.operation_id, 2)
    assert (first.error, second.error) == ("", "")
    assert first.snapshot_ids == [gone] and first.deleted_packs >= 1
    assert first.deleted_bytes >= 3 << 20
    assert (second.deleted_packs, second.deleted_bytes) == (0, 0)
    assert not bucket.exists(f"repository/snapshots/{gone}")
    assert bucket.exists(f"repository/snapshots/{kept}")
    assert len(bucket.list("repository/data/")) == len(packs_before) - first.deleted_packs
    fresh = RepositoryData(bucket, "repository", PasswordKey("pw"))  # what another process sees
    await asyncio.to_thread(Restorer(fresh.repository()).restore, kept, tmp_path / "out")
    assert tree_digest(tmp_path / "out") == tree_digest(kept_src)


async def test_forget_in_a_bucket_without_a_repository_creates_none(
    bus: Bus, bucket: MinioStore
) -> None:
    forgetter = Forgetter(
        "c1", bus, {"default": RepositoryData(bucket, "repository", PasswordKey("pw"))}.get
    )
    op_id = f"del-{uuid.uuid4().hex[:8]}"
    since = datetime.now(UTC)
    await forgetter.on_forget(
        ForgetSnapshots(operation_id=op_id, cluster="c1", bucket="default", snapshot_ids=["a" * 64])
    )
    (answer,) = await answers(bus, since, op_id, 1)
    assert answer.error == "" and answer.deleted_packs == 0
    assert bucket.list("repository/") == []


async def test_an_unreadable_repository_is_answered_with_the_error(
    bus: Bus, bucket: MinioStore, tmp_path: Path
) -> None:
    written = RepositoryData(bucket, "repository", PasswordKey("right"))
    snapshot, _ = await asyncio.to_thread(
        written.backup, volume(tmp_path, "v", 1024), None, {}, None
    )
    forgetter = Forgetter(
        "c1", bus, {"default": RepositoryData(bucket, "repository", PasswordKey("wrong"))}.get
    )
    op_id = f"del-{uuid.uuid4().hex[:8]}"
    since = datetime.now(UTC)
    await forgetter.on_forget(
        ForgetSnapshots(operation_id=op_id, cluster="c1", bucket="default", snapshot_ids=[snapshot])
    )
    (answer,) = await answers(bus, since, op_id, 1)
    assert "WrongPassword" in answer.error
    assert bucket.exists(f"repository/snapshots/{snapshot}")
