"""Answers to `vessel.query.mover.<cluster>.files`: the entries and bytes of a repository
snapshot, read from the bucket without restoring anything (`repo.browse`).

Who may read which backup is decided before the question reaches the mover: the gateway
checks the caller's role and scope, and protection names the verified snapshot. A reader
per (bucket, snapshot) is kept for a minute, so a download's consecutive reads do not list
the repository's index again each time.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections import OrderedDict

from pydantic import ValidationError

from services.mover.buckets import MoverBuckets
from services.mover.repo.browse import BadPath, Found, SnapshotReader
from services.mover.repo.errors import RepositoryError
from services.mover.volumes import RepositoryData
from vessel.bus.errors import PermanentError
from vessel.contracts.events import QueryFailed
from vessel.contracts.files import FileBytes, FileEntry, FileListing, FileQuery
from vessel.objectstore.base import ObjectStoreError
from vessel.sealed.errors import KeyServiceUnreachable

KEEP_SECONDS = 60.0
READERS = 16


def entry(found: Found) -> FileEntry:
    node = found.node
    if node is None:  # the volume's root
        return FileEntry(path="/", type="dir", size=0, mode=0o755)
    return FileEntry(
        path=found.path,
        type=node.type,
        size=found.size,
        mode=node.mode,
        uid=node.uid,
        gid=node.gid,
        mtime_ns=node.mtime_ns,
        target=node.fs_target if node.type == "symlink" else "",
    )


class FileReads:
    def __init__(self, buckets: MoverBuckets) -> None:
        self.buckets = buckets
        self._readers: OrderedDict[tuple[str, int, str], tuple[float, SnapshotReader]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    async def on_request(self, subject: str, body: bytes) -> bytes:
        reply: FileListing | FileBytes | QueryFailed
        try:
            query = FileQuery.model_validate_json(body)
        except ValidationError as exc:
            return QueryFailed.invalid(subject, exc).model_dump_json().encode()
        try:
            data = await self.buckets.prepare(query.bucket)
            reply = await asyncio.to_thread(self.answer, data, query)
        except (
            PermanentError,
            RepositoryError,
            ObjectStoreError,
            KeyServiceUnreachable,
        ) as exc:
            reply = QueryFailed(error=f"{query.action} {query.path}: {exc}")
        return reply.model_dump_json().encode()

    def answer(self, data: RepositoryData, query: FileQuery) -> FileListing | FileBytes:
        reader = self._reader(query.bucket, data, query.snapshot_id)
        if query.action == "read":
            found = reader.find(query.path)
            if found.node is None or found.node.type != "file":
                raise BadPath(f"{found.path} is a {found.kind}, not a file")
            chunk = reader.read(found.node, query.offset, query.limit)
            return FileBytes(
                path=found.path,
                offset=query.offset,
                size=found.node.size,
                data=base64.b64encode(chunk).decode(),
            )
        if query.action == "stat":
            return FileListing(entry=entry(reader.find(query.path)))
        found = reader.find(query.path)
        entries = reader.entries(query.path)
        page = entries[query.offset : query.offset + query.limit]
        return FileListing(entry=entry(found), entries=[entry(e) for e in page], total=len(entries))

    def _reader(self, bucket: str, data: RepositoryData, snapshot_id: str) -> SnapshotReader:
        key, now = (bucket, id(data), snapshot_id), time.monotonic()
        with self._lock:
            kept = self._readers.get(key)
        reader = kept[1] if kept else SnapshotReader(data.repository(), snapshot_id)
        with self._lock:
            self._keep(key, now, reader)
        return reader

    def _keep(self, key: tuple[str, int, str], now: float, reader: SnapshotReader) -> None:
        for old in [k for k, (at, _) in self._readers.items() if now - at > KEEP_SECONDS]:
            del self._readers[old]
        self._readers[key] = (now, reader)
        self._readers.move_to_end(key)
        while len(self._readers) > READERS:
            self._readers.popitem(last=False)
