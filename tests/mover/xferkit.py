"""Two clusters for direct-transfer tests: a source mover and a destination mover on the
real bus, each given only its own bucket on the real S3 server."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.mover import send
from services.mover.inbox import receiving
from services.mover.receive import Receiver
from services.mover.repo import stream
from services.mover.repo.repository import Repository
from services.mover.send import Sender
from services.mover.volumes import RepositoryData
from vessel.bus.errors import PermanentError
from vessel.bus.inbox import start
from vessel.bus.nats_port import Bus, KeyValue
from vessel.contracts.commands import SendSnapshot
from vessel.contracts.events import TransferResult
from vessel.objectstore.minio_port import MinioStore
from vessel.sealed.providers.password import PasswordKey
from vessel.stopping import cancel_and_wait
from vessel_dev.rig.processes import S3Server

PREFIX = "repository"
SOURCE_PASSWORD, TARGET_PASSWORD = "source password", "target password"
CHUNK_AVG = 64 << 10
PACK_SIZE = 256 << 10


def new_bucket(s3: S3Server) -> MinioStore:
    store = MinioStore(s3.endpoint, f"t-{uuid.uuid4().hex[:12]}", s3.access_key, s3.secret_key)
    store.ensure_bucket()
    return store


def make_repositories(
    s3: S3Server, like: bool = True, target_pack_size: int = PACK_SIZE
) -> tuple[MinioStore, MinioStore]:
    """Bucket A with a repository, bucket B with one made like it (done once, by whoever
    holds both; the movers below never do)."""
    a, b = new_bucket(s3), new_bucket(s3)
    source = Repository.init(
        a, PREFIX, PasswordKey(SOURCE_PASSWORD), chunk_avg=CHUNK_AVG, pack_size=PACK_SIZE
    )
    Repository.init(
        b,
        PREFIX,
        PasswordKey(TARGET_PASSWORD),
        chunk_avg=CHUNK_AVG,
        pack_size=target_pack_size,
        like=source if like else None,
    )
    return a, b


@dataclass
class Clusters:
    source: RepositoryData
    target: RepositoryData
    sender: Sender
    receiver: Receiver
    transfers: KeyValue
    source_cluster: str
    target_cluster: str

    def command(self, snapshot_id: str, transfer_id: str = "send-1") -> SendSnapshot:
        return SendSnapshot(
            transfer_id=transfer_id,
            operation_id=f"op-{transfer_id}",
            cluster=self.source_cluster,
            source_bucket="a",
            snapshot_id=snapshot_id,
            target_cluster=self.target_cluster,
            target_bucket="b",
        )

    async def result(self, transfer_id: str) -> TransferResult:
        entry = await self.transfers.get(f"{self.source_cluster}.{transfer_id}")
        assert entry is not None, f"no result recorded for {transfer_id}"
        return TransferResult.model_validate_json(entry.value)

    def target_repository(self) -> Repository:
        """The destination as a fresh process sees it."""
        return Repository.open(self.target.store, PREFIX, PasswordKey(TARGET_PASSWORD))


class running:
    """Source and destination movers over buckets `a` and `b` (each sees only its own)."""

    def __init__(
        self,
        bus: Bus,
        a: MinioStore,
        b: MinioStore,
        source_password: str = SOURCE_PASSWORD,
        target_password: str = TARGET_PASSWORD,
        frame_bytes: int | None = None,
        idle: float | None = None,
    ) -> None:
        self.bus, self.a, self.b = bus, a, b
        self.passwords = source_password, target_password
        self.frame_bytes = frame_bytes
        self.idle = idle
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Clusters:
        source = RepositoryData(self.a, PREFIX, PasswordKey(self.passwords[0]))
        target = RepositoryData(self.b, PREFIX, PasswordKey(self.passwords[1]))
        suffix = uuid.uuid4().hex[:8]
        transfers = await self.bus.kv(f"transfers_{suffix}")

        async def prepare(name: str) -> RepositoryData:
            if name != "b":
                raise PermanentError(f"bucket {name!r} is not registered")
            return target

        receiver = Receiver(f"dst-{suffix}", self.bus, prepare)
        if self.idle is not None:
            receiver.idle = self.idle
        self._tasks = await start(self.bus, receiving(receiver))
        sender = Sender(f"src-{suffix}", self.bus, transfers, {"a": source}.__getitem__)
        if self.frame_bytes is not None:
            sender.frame_bytes = self.frame_bytes
        return Clusters(
            source, target, sender, receiver, transfers, sender.cluster_id, f"dst-{suffix}"
        )

    async def __aexit__(self, *_: object) -> None:
        assert self._tasks
        await cancel_and_wait(self._tasks)


def write_files(root: Path, files: dict[str, int]) -> None:
    """Random (incompressible) files of the given sizes."""
    for name, size in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))


class Pause:
    """Holds the source mover when it reads its `at`-th blob, until released."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, at: int) -> None:
        self.at, self.reads = at, 0
        self.reached, self.release = threading.Event(), threading.Event()
        self._lock = threading.Lock()
        self._real = stream.read_payload
        monkeypatch.setattr(send, "read_payload", self._read)

    def _read(self, repo: Repository, blob_id: bytes) -> tuple[str, bytes, bool, int]:
        with self._lock:  # the sender reads several blobs at once
            self.reads += 1
            holds = self.reads == self.at
        if holds:
            self.reached.set()
            self.release.wait(30)
        return self._real(repo, blob_id)

    async def reached_in_time(self) -> bool:
        return await asyncio.to_thread(self.reached.wait, 30)
