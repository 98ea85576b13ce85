"""The destination side of a direct transfer: sessions that store another mover's blobs.

A source mover opens a session on `vessel.xfer.<cluster>.open` (`Receiver.open`, a row of
the mover's inbox); this mover then serves the session's own subjects, a responder per
session started here, until it is committed and closed, reopened by the same transfer, or
idle too long (`Receiver.end_idle_sessions`, also an inbox row). Blobs go through the
ordinary pack writer (each pack followed by its index object), and the snapshot document
is stored only at `commit`, after the writer is flushed and the snapshot's trees and
chunks are all found in this repository. Whenever a session ends, what it received is
flushed first: a resumed transfer finds those blobs present and does not send them again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Self

from pydantic import ValidationError

from services.mover.context import MoverContext
from services.mover.repo.errors import CorruptObject, RepositoryError, RepositoryMissing
from services.mover.repo.format import SnapshotDoc
from services.mover.repo.locks import Held
from services.mover.repo.repository import Repository
from services.mover.repo.retention import save_snapshot
from services.mover.repo.stream import (
    Assembler,
    NotLike,
    OpenReply,
    OpenRequest,
    TransferRefused,
    aad,
    bitmap,
    failed,
    first_missing,
    ok,
    pieces,
    session_key,
    split_ids,
)
from services.mover.repo.writer import BlobWriter
from services.mover.volumes import RepositoryData
from vessel.bus.errors import PermanentError
from vessel.bus.nats_port import Bus
from vessel.contracts import queries
from vessel.contracts.events import QueryFailed
from vessel.objectstore.base import ObjectStoreError
from vessel.sealed.keys import MasterKey

log = logging.getLogger("vessel.mover")
Prepare = Callable[[str], Awaitable[RepositoryData]]
IDLE_AFTER = 300.0


@dataclass
class Session:
    id: str
    request: OpenRequest
    repo: Repository
    channel: MasterKey
    """Opens the source's frames; its chunk-id key (the repositories') checks blob ids."""
    check: str
    nonce: str
    writer: BlobWriter
    lock: Held
    assembler: Assembler
    received: set[bytes] = field(default_factory=set)
    """Blobs this session stored or holds in the pack being written."""
    used: float = field(default_factory=time.monotonic)
    serving: asyncio.Task[None] | None = None
    guard: threading.Lock = field(default_factory=threading.Lock)
    ended: bool = False

    def end(self) -> None:
        """Store what arrived (it is verified), then let go of the repository."""
        with self.guard:
            self.ended = True
            try:
                self.writer.flush()
            except (ObjectStoreError, RepositoryError, OSError) as exc:
                log.warning("transfer %s: blobs not stored: %s", self.request.transfer_id, exc)
            finally:
                self.writer.close()
                self.lock.release()

    def open(self, verb: str, body: bytes) -> bytes:
        what = f"transfer {self.request.transfer_id} {verb}"
        return self.channel.open(body, aad(self.request.transfer_id, verb), what)

    def have(self, body: bytes) -> bytes:
        ids = split_ids(self.open("have", body))
        return bitmap([not self.repo.usable(i) and i not in self.received for i in ids])

    def blobs(self, body: bytes) -> bytes:
        for piece in pieces(self.open("blobs", body)):
            whole = self.assembler.feed(piece)
            if whole is not None:
                blob_id, type_, data = whole
                self.writer.add(blob_id, type_, data)
                self.received.add(blob_id)
        return b""

    def commit(self, body: bytes) -> bytes:
        """Store the snapshot document once everything it names is stored here."""
        try:
            doc = SnapshotDoc.model_validate_json(self.open("commit", body))
        except ValidationError as exc:
            raise CorruptObject(f"snapshot document: {exc.errors()[0]['msg']}") from exc
        if doc.tree != self.request.tree:
            raise CorruptObject(f"snapshot document names tree {doc.tree}, not {self.request.tree}")
        self.writer.flush()
        missing = first_missing(self.repo, doc.tree)
        if missing is not None:
            raise CorruptObject(f"not committed, this repository lacks {missing}")
        snapshot_id = self.request.snapshot_id
        existing = find_copy(self.repo, snapshot_id, doc.tree)
        if existing:
            return existing.encode()
        copied = doc.model_copy(update={"tags": {**doc.tags, "copied_from": snapshot_id}})
        return save_snapshot(self.repo, copied, self.writer.retain).encode()


def find_copy(repo: Repository, snapshot_id: str, tree: str) -> str:
    """A snapshot already copied from `snapshot_id` (same tree), or ""."""
    for doc_id, doc in repo.snapshots().items():
        if doc.tags.get("copied_from") == snapshot_id and doc.tree == tree:
            return doc_id
    return ""


def begin(data: RepositoryData, request: OpenRequest, where: str) -> tuple[Session, str]:
    """A session on the destination repository, and a copy it already holds (or "")."""
    if data.like is None and not data.store.exists(f"{data.prefix.strip('/')}/config"):
        raise RepositoryMissing(f"no repository in {where}: create it like the source's")
    repo = data.repository()
    if repo.config.chunk_avg != request.chunk_avg:
        raise NotLike(
            f"chunk size {repo.config.chunk_avg} differs from the source's {request.chunk_avg}: "
            "the repository was not made like the source's"
        )
    existing = find_copy(repo, request.snapshot_id, request.tree)
    nonce = os.urandom(32)
    channel, check = session_key(repo.key.chunk_id, request.transfer_id, nonce)
    lock = Held(repo, "backup")  # adds data like a backup: a prune must respect it
    try:
        repo.load_index()
        repo.excluded_packs = {p for o in lock.others() if o.kind == "prune" for p in o.doomed}
        writer = BlobWriter(repo)
    except BaseException:
        lock.release()
        raise
    session = Session(
        id=uuid.uuid4().hex,
        request=request,
        repo=repo,
        channel=channel,
        check=check,
        nonce=nonce.hex(),
        writer=writer,
        lock=lock,
        assembler=Assembler(channel, repo.config.chunk_max),
    )
    return session, existing


class Receiver:
    """The sessions this mover serves as the destination of direct transfers."""

    def __init__(
        self, cluster_id: str, bus: Bus, prepare: Prepare, idle: float = IDLE_AFTER
    ) -> None:
        self.cluster_id = cluster_id
        self.bus = bus
        self.prepare = prepare
        self.idle = idle
        self.sessions: dict[str, Session] = {}
        self._by_transfer: dict[str, Session] = {}

    @classmethod
    def on(cls, ctx: MoverContext) -> Self:
        """The receiver of `ctx`'s cluster, storing into the buckets it has opened."""
        return cls(ctx.cluster_id, ctx.bus, ctx.buckets.prepare)

    async def end_idle_sessions(self) -> None:
        """End sessions idle too long, until cancelled; then end every session (what each
        received is stored, so a resumed transfer does not send it again)."""
        try:
            while True:
                await asyncio.sleep(min(self.idle / 4, 30.0))
                now = time.monotonic()
                for session in [s for s in self.sessions.values() if now - s.used > self.idle]:
                    log.info("transfer %s: idle, session ended", session.request.transfer_id)
                    await self._end(session)
        finally:
            for session in list(self.sessions.values()):
                await self._end(session)

    async def _end(self, session: Session, answering: bool = False) -> None:
        """End a session; `answering`: from one of its own requests, whose reply must
        still go out (unsubscribing stops the subscription's callback), so it stops
        serving a moment later."""
        if self.sessions.pop(session.id, None) is None:
            return
        if self._by_transfer.get(session.request.transfer_id) is session:
            del self._by_transfer[session.request.transfer_id]
        serving = session.serving
        if serving is not None:
            if answering:
                asyncio.get_running_loop().call_later(1.0, serving.cancel)
            else:
                serving.cancel()
        await asyncio.to_thread(session.end)

    async def open(self, subject: str, body: bytes) -> bytes:
        """Answer `vessel.xfer.<cluster>.open`: a new session serving its own subjects."""
        try:
            request = OpenRequest.model_validate_json(body)
        except ValidationError as exc:
            return failed(QueryFailed.invalid(subject, exc).error)
        earlier = self._by_transfer.get(request.transfer_id)
        if earlier is not None:
            await self._end(earlier)  # a resumed transfer: keep what the last attempt sent
        where = f"bucket {request.target_bucket!r}"
        try:
            data = await self.prepare(request.target_bucket)
            session, existing = await asyncio.to_thread(begin, data, request, where)
        except (PermanentError, ObjectStoreError, RepositoryError) as exc:
            return failed(f"{where}: {type(exc).__name__}: {exc}")
        self.sessions[session.id] = session
        self._by_transfer[request.transfer_id] = session
        subject = queries.XFER_SESSION.format(cluster=self.cluster_id, session=session.id, verb="*")
        session.serving = await self.bus.serve(subject, self._verb)
        reply = OpenReply(
            session=session.id,
            nonce=session.nonce,
            check=session.check,
            chunk_avg=session.repo.config.chunk_avg,
            existing=existing,
        )
        log.info(
            "transfer %s from %s: session %s",
            request.transfer_id,
            request.source_cluster,
            session.id,
        )
        return ok(reply.model_dump_json().encode())

    async def _verb(self, subject: str, body: bytes) -> bytes:
        session_id, verb = subject.split(".")[-2:]
        session = self.sessions.get(session_id)
        if session is None:
            return failed(f"no transfer session {session_id} on cluster {self.cluster_id}")
        session.used = time.monotonic()
        if verb == "close":
            await self._end(session, answering=True)
            return ok()
        step = {"have": session.have, "blobs": session.blobs, "commit": session.commit}.get(verb)
        if step is None:
            return failed(f"unknown transfer request {verb!r}")

        def guarded() -> bytes:
            with session.guard:
                if session.ended:  # ended while this request waited
                    raise TransferRefused(f"transfer session {session_id} has ended")
                return step(body)

        try:
            return ok(await asyncio.to_thread(guarded))
        except (ObjectStoreError, RepositoryError) as exc:
            log.warning("transfer %s %s: %s", session.request.transfer_id, verb, exc)
            return failed(f"{type(exc).__name__}: {exc}")
        finally:
            session.used = time.monotonic()
