"""Direct transfers that cannot happen fail with an error that says why, and a
destination never stores a snapshot whose data it lacks nor a frame it cannot verify."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from services.mover.repo.repository import Repository
from services.mover.repo.stream import (
    FrameBuilder,
    OpenReply,
    OpenRequest,
    TransferRefused,
    aad,
    answer,
    session_key,
)
from services.mover.volumes import RepositoryData
from tests.mover.xferkit import (
    PREFIX,
    SOURCE_PASSWORD,
    TARGET_PASSWORD,
    make_repositories,
    running,
    write_files,
)
from vessel.bus.nats_port import Bus
from vessel.contracts import queries
from vessel.objectstore.minio_port import MinioStore
from vessel.sealed.providers.password import PasswordKey
from vessel_dev.rig.processes import S3Server

pytestmark = pytest.mark.timeout(60)


async def backed_up(a: MinioStore, tmp_path: Path) -> str:
    data = tmp_path / "data"
    write_files(data, {"a.bin": 300_000, "b.bin": 200_000})
    source = RepositoryData(a, PREFIX, PasswordKey(SOURCE_PASSWORD))
    snapshot, _ = await asyncio.to_thread(source.backup, data, None, {}, None)
    return snapshot


def stored_keys(store: MinioStore, kind: str) -> list[str]:
    return store.list(f"{PREFIX}/{kind}/")


@pytest.mark.parametrize("side", ["source", "target"])
async def test_a_wrong_password_fails_the_transfer_naming_the_side(
    side: str, bus: Bus, s3_server: S3Server, tmp_path: Path
) -> None:
    a, b = make_repositories(s3_server)
    snapshot = await backed_up(a, tmp_path)
    passwords = {"source": ("nope", TARGET_PASSWORD), "target": (SOURCE_PASSWORD, "nope")}
    async with running(bus, a, b, *passwords[side]) as clusters:
        await clusters.sender.send(clusters.command(snapshot))
        result = await clusters.result("send-1")
    if side == "source":
        assert result.error == (
            f"WrongPassword: no key of {a.bucket}/{PREFIX} opens with this password"
        )
    else:
        assert result.error == (
            f"TransferRefused: the mover of cluster {clusters.target_cluster}: bucket 'b': "
            f"WrongPassword: no key of {b.bucket}/{PREFIX} opens with this password"
        )
    assert stored_keys(b, "data") == []


async def test_a_missing_snapshot_is_named(bus: Bus, s3_server: S3Server, tmp_path: Path) -> None:
    a, b = make_repositories(s3_server)
    async with running(bus, a, b) as clusters:
        await clusters.sender.send(clusters.command("0" * 64))
        result = await clusters.result("send-1")
    assert result.error == f"SnapshotMissing: snapshot {'0' * 64} is not in bucket 'a'"


async def test_a_destination_not_made_like_the_source_is_refused_before_any_data(
    bus: Bus, s3_server: S3Server, tmp_path: Path
) -> None:
    a, b = make_repositories(s3_server, like=False)
    snapshot = await backed_up(a, tmp_path)
    async with running(bus, a, b) as clusters:
        await clusters.sender.send(clusters.command(snapshot))
        result = await clusters.result("send-1")
    assert result.error.startswith("NotLike: bucket 'b' of cluster dst-"), result.error
    assert "was not made like 'a'" in result.error
    assert result.bytes == 0
    assert stored_keys(b, "data") == [] and stored_keys(b, "snapshots") == []


async def test_a_cluster_without_a_mover_is_named(
    bus: Bus, s3_server: S3Server, tmp_path: Path
) -> None:
    a, b = make_repositories(s3_server)
    snapshot = await backed_up(a, tmp_path)
    async with running(bus, a, b) as clusters:
        command = clusters.command(snapshot).model_copy(update={"target_cluster": "nowhere"})
        await clusters.sender.send(command)
        result = await clusters.result("send-1")
    assert result.error == "BusError: nobody answers requests on vessel.xfer.nowhere.open"


async def test_the_destination_refuses_forged_frames_and_a_snapshot_without_its_data(
    bus: Bus, s3_server: S3Server, tmp_path: Path
) -> None:
    """Speaking the protocol by hand, as a source holding the chunk-id key could."""
    a, b = make_repositories(s3_server)
    snapshot = await backed_up(a, tmp_path)
    source = Repository.open(a, PREFIX, PasswordKey(SOURCE_PASSWORD))
    doc = source.snapshots_doc(snapshot)
    async with running(bus, a, b) as clusters:
        request = OpenRequest(
            transfer_id="by-hand",
            source_cluster="someone",
            target_bucket="b",
            snapshot_id=snapshot,
            tree=doc.tree,
            chunk_avg=source.config.chunk_avg,
        )
        opened = OpenReply.model_validate_json(
            answer(
                await bus.request(
                    queries.XFER_OPEN.format(cluster=clusters.target_cluster),
                    request.model_dump_json().encode(),
                ),
                "open",
            )
        )
        key, check = session_key(source.key.chunk_id, "by-hand", bytes.fromhex(opened.nonce))
        assert check == opened.check

        async def ask(verb: str, body: bytes) -> bytes:
            subject = queries.XFER_SESSION.format(
                cluster=clusters.target_cluster, session=opened.session, verb=verb
            )
            return answer(await bus.request(subject, body, wait=30), verb)

        frames = FrameBuilder()
        list(frames.add(os.urandom(32), "data", b"not this blob", False, 13))
        frame = frames.finish()
        assert frame is not None
        # Sealed without the repositories' chunk-id key: refused.
        stranger, _ = session_key(os.urandom(32), "by-hand", bytes.fromhex(opened.nonce))
        with pytest.raises(TransferRefused, match="authentication failed"):
            await ask("blobs", stranger.seal(frame, aad("by-hand", "blobs")))
        # Sealed right, but the content does not match the id it claims.
        with pytest.raises(TransferRefused, match="does not match its id"):
            await ask("blobs", key.seal(frame, aad("by-hand", "blobs")))
        # The snapshot document before its data: refused, nothing stored.
        body = key.seal(doc.model_dump_json().encode(), aad("by-hand", "commit"))
        with pytest.raises(TransferRefused, match="not committed, this repository lacks"):
            await ask("commit", body)
        assert stored_keys(b, "snapshots") == []
