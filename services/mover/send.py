"""The source side of a direct transfer: `vessel.cmd.mover.<cluster>.send`.

The source mover walks the snapshot in its own repository, asks the destination mover in
batches which blobs it lacks, and sends only those, in frames below NATS' payload limit,
one request at a time: the destination answers a frame once its pack writer took it, so
neither side holds more than a frame and a few packs. The snapshot document goes last
(`commit`); the destination stores it only when everything it names is stored. The
outcome is the usual `mover.transfer.completed`/`failed`, direction `copy`, with the bytes
this mover actually sent; it is recorded in KV `transfers`, so a redelivered command
answers from the record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from itertools import islice

from services.mover.cancels import CANCELED, Cancels
from services.mover.repo.errors import CorruptObject, RepositoryError
from services.mover.repo.format import SnapshotDoc
from services.mover.repo.repository import Repository
from services.mover.repo.stream import (
    FRAME_BYTES,
    ID,
    FrameBuilder,
    NotLike,
    OpenReply,
    OpenRequest,
    aad,
    answer,
    flagged,
    read_payload,
    session_key,
    walk,
)
from services.mover.transfers import (
    STORE_RETRY_SECONDS,
    DataFor,
    TransferWorker,
    record,
    transfer_span,
)
from services.mover.volumes import RepositoryData
from vessel.bus.errors import BusError, PermanentError, TemporaryError
from vessel.bus.nats_port import Bus, KeyValue
from vessel.contracts import queries, subjects
from vessel.contracts.commands import SendSnapshot
from vessel.contracts.events import TransferProgress, TransferResult
from vessel.objectstore.base import ObjectNotFound, ObjectStoreError, StoreUnavailable
from vessel.sealed.errors import KeyServiceUnreachable
from vessel.sealed.keys import MasterKey

log = logging.getLogger("vessel.mover")
BATCH_IDS = (FRAME_BYTES - 64) // ID
"""Blob ids per `have` request: one frame."""
PROGRESS_EVERY = 1.0
READ_AHEAD = 8
"""Blobs read from the bucket at once: hides S3 latency, holds at most 8 chunks."""


class Canceled(Exception):
    pass


class SnapshotMissing(RepositoryError):
    pass


class Session:
    """One open session with the destination: sealed requests, counted bytes."""

    def __init__(self, bus: Bus, cmd: SendSnapshot, reply: OpenReply, key: MasterKey) -> None:
        self.bus = bus
        self.cmd = cmd
        self.key = key
        self.id = reply.session
        self.sent = 0
        self.wait = 60.0
        self.started = self.reported = time.monotonic()

    async def request(self, verb: str, body: bytes, wait: float | None = None) -> bytes:
        sealed = self.key.seal(body, aad(self.cmd.transfer_id, verb))
        subject = queries.XFER_SESSION.format(
            cluster=self.cmd.target_cluster, session=self.id, verb=verb
        )
        self.sent += len(sealed)
        reply = await ask(self.bus, self.cmd.target_cluster, subject, sealed, wait or self.wait)
        return answer(reply, f"{verb} by the mover of cluster {self.cmd.target_cluster}")

    async def close(self) -> None:
        subject = queries.XFER_SESSION.format(
            cluster=self.cmd.target_cluster, session=self.id, verb="close"
        )
        with contextlib.suppress(BusError, TimeoutError):
            await self.bus.request(subject, b"", wait=10.0)


async def ask(bus: Bus, cluster: str, subject: str, body: bytes, wait: float) -> bytes:
    try:
        return await bus.request(subject, body, wait=wait)
    except TimeoutError:
        raise TimeoutError(f"the mover of cluster {cluster} did not answer {subject}") from None


class Sender(TransferWorker):
    def __init__(
        self,
        cluster_id: str,
        bus: Bus,
        transfers: KeyValue,
        data_for: DataFor,
        cancels: Cancels | None = None,
        frame_bytes: int = FRAME_BYTES,
        retry_seconds: float = STORE_RETRY_SECONDS,
    ) -> None:
        super().__init__(cluster_id, bus, transfers, data_for, cancels, retry_seconds)
        self.frame_bytes = frame_bytes

    async def send(self, cmd: SendSnapshot) -> None:
        if await self._replay(cmd.transfer_id):
            return
        base = self._base(cmd, "copy")
        started = time.monotonic()
        with transfer_span(base) as span:
            try:
                result = await self._send(cmd, base)
            except (StoreUnavailable, KeyServiceUnreachable) as exc:
                raise TemporaryError(str(exc), delay=self.retry_seconds) from exc
            except Canceled:
                result = base.model_copy(update={"error": CANCELED})
            except (ObjectStoreError, RepositoryError, BusError, TimeoutError) as exc:
                log.warning("transfer %s failed: %s", cmd.transfer_id, exc)
                result = base.model_copy(update={"error": f"{type(exc).__name__}: {exc}"})
            record(result, started, span)
        await self._finish(result)

    async def _send(self, cmd: SendSnapshot, base: TransferResult) -> TransferResult:
        if self.cancels is not None and await self.cancels.is_canceled(cmd.operation_id):
            raise Canceled
        source = self.data_for(cmd.source_bucket)
        if not isinstance(source, RepositoryData):
            raise PermanentError("direct transfers need a repository-backed bucket")
        repo = await asyncio.to_thread(source.repository)
        doc = await asyncio.to_thread(snapshot_doc, repo, cmd)
        session = await self._open(cmd, repo, doc)
        if isinstance(session, str):
            return base.model_copy(update={"snapshot_id": session})
        try:
            await self._blobs(cmd, repo, doc, session)
            body = doc.model_dump_json().encode()
            snapshot_id = (await session.request("commit", body, wait=300.0)).decode()
        except asyncio.CancelledError:
            raise  # killed: the destination keeps the session until reopened or idle
        except BaseException:
            await session.close()
            raise
        await session.close()
        log.info(
            "transfer %s: %d bytes sent, snapshot %s", cmd.transfer_id, session.sent, snapshot_id
        )
        return base.model_copy(
            update={"snapshot_id": snapshot_id, "bytes": session.sent, "files": doc.files}
        )

    async def _open(self, cmd: SendSnapshot, repo: Repository, doc: SnapshotDoc) -> Session | str:
        """An open session, or the id of a copy the destination already holds."""
        request = OpenRequest(
            transfer_id=cmd.transfer_id,
            source_cluster=self.cluster_id,
            target_bucket=cmd.target_bucket,
            snapshot_id=cmd.snapshot_id,
            tree=doc.tree,
            chunk_avg=repo.config.chunk_avg,
        )
        subject = queries.XFER_OPEN.format(cluster=cmd.target_cluster)
        body = request.model_dump_json().encode()
        raw = answer(
            await ask(self.bus, cmd.target_cluster, subject, body, 60.0),
            f"the mover of cluster {cmd.target_cluster}",
        )
        try:
            reply = OpenReply.model_validate_json(raw)
        except ValueError as exc:
            raise CorruptObject(f"open reply of cluster {cmd.target_cluster}: {exc}") from exc
        key, check = session_key(repo.key.chunk_id, cmd.transfer_id, bytes.fromhex(reply.nonce))
        session = Session(self.bus, cmd, reply, key)
        session.sent = len(body)
        if check != reply.check or reply.chunk_avg != repo.config.chunk_avg:
            await session.close()
            raise NotLike(
                f"bucket {cmd.target_bucket!r} of cluster {cmd.target_cluster} was not made "
                f"like {cmd.source_bucket!r}: blob ids differ (create it with `like`)"
            )
        if reply.existing:
            await session.close()
            return reply.existing
        return session

    async def _blobs(
        self, cmd: SendSnapshot, repo: Repository, doc: SnapshotDoc, session: Session
    ) -> None:
        blobs = walk(repo, doc.tree)
        frames = FrameBuilder(self.frame_bytes)
        while True:
            if self.cancels is not None and self.cancels.flagged(cmd.operation_id):
                raise Canceled
            batch = await asyncio.to_thread(next_batch, blobs)
            if not batch:
                break
            ids = list(batch)
            lacking = flagged(await session.request("have", b"".join(ids)), len(ids))
            wanted = [i for i, lacks in zip(ids, lacking, strict=True) if lacks]
            for start in range(0, len(wanted), READ_AHEAD):
                window = wanted[start : start + READ_AHEAD]
                read = await asyncio.gather(
                    *(asyncio.to_thread(read_payload, repo, i) for i in window)
                )
                for blob_id, (type_, payload, compressed, raw_length) in zip(
                    window, read, strict=True
                ):
                    for frame in frames.add(blob_id, type_, payload, compressed, raw_length):
                        await self._frame(cmd, session, frame)
        last = frames.finish()
        if last is not None:
            await self._frame(cmd, session, last)

    async def _frame(self, cmd: SendSnapshot, session: Session, frame: bytes) -> None:
        """Send one frame; stop if the operation was canceled; report progress each second."""
        if self.cancels is not None and self.cancels.flagged(cmd.operation_id):
            raise Canceled
        await session.request("blobs", frame)
        now = time.monotonic()
        if now - session.reported < PROGRESS_EVERY:
            return
        session.reported = now
        progress = TransferProgress(
            transfer_id=cmd.transfer_id,
            operation_id=cmd.operation_id,
            cluster=self.cluster_id,
            direction="copy",
            files=0,
            bytes=session.sent,
            bytes_per_second=session.sent / max(now - session.started, 1e-3),
        )
        await self.bus.publish(subjects.TRANSFER_PROGRESS, progress)


def next_batch(blobs: Iterator[tuple[bytes, str]]) -> dict[bytes, str]:
    """Up to `BATCH_IDS` distinct blob ids, in walk order."""
    batch: dict[bytes, str] = {}
    for blob_id, type_ in islice(blobs, BATCH_IDS):
        batch.setdefault(blob_id, type_)
    return batch


def snapshot_doc(repo: Repository, cmd: SendSnapshot) -> SnapshotDoc:
    try:
        return repo.snapshots_doc(cmd.snapshot_id)
    except ObjectNotFound:
        raise SnapshotMissing(
            f"snapshot {cmd.snapshot_id} is not in bucket {cmd.source_bucket!r}"
        ) from None
