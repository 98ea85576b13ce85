"""A backed-up volume's files as the gateway reads them: protection names the verified
repository snapshot (`vessel.query.protection.files`), a mover of the cluster reads it
(`vessel.query.mover.<cluster>.files`).

A directory is downloaded as a tar built here from the mover's listings and reads
(`tarfile` writes each header; data follows in the mover's chunks, so memory stays one
chunk whatever the size). Device nodes and sockets are left out of the tar, hard links
come out as separate files, and names are relative to the directory's parent.
"""

from __future__ import annotations

import base64
import tarfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TypeVar

import grpc

from services.gateway.errors import ApiError
from services.gateway.provisioners import decoded
from vessel.bus.errors import BusError
from vessel.bus.nats_port import Bus
from vessel.contracts import queries
from vessel.contracts.events import QueryFailed
from vessel.contracts.files import (
    PAGE_MAX,
    BackupVolumeFound,
    BackupVolumeLookup,
    FileBytes,
    FileEntry,
    FileListing,
    FileQuery,
)
from vessel.contracts.models import Payload

R = TypeVar("R", bound=Payload)
CHUNK = 256 << 10
WAIT_SECONDS = 30.0
BLOCK = tarfile.BLOCKSIZE
TAR_TYPES = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "fifo": tarfile.FIFOTYPE,
}


async def ask(bus: Bus, subject: str, request: Payload, reply: type[R], who: str) -> R:
    """One query; a refusal is FAILED_PRECONDITION with the answerer's reason."""
    try:
        body = await bus.request(subject, request.model_dump_json().encode(), wait=WAIT_SECONDS)
    except (BusError, TimeoutError):
        raise ApiError(
            grpc.StatusCode.UNAVAILABLE,
            f"{who} did not answer within {WAIT_SECONDS:g}s",
            reason="NO_ANSWER",
        ) from None
    answer = decoded(body, reply, who)
    if isinstance(answer, QueryFailed):
        raise ApiError(grpc.StatusCode.FAILED_PRECONDITION, answer.error)
    return answer


@dataclass(frozen=True)
class VolumeFiles:
    bus: Bus
    cluster: str
    bucket: str
    snapshot_id: str

    @classmethod
    async def find(cls, bus: Bus, lookup: BackupVolumeLookup, cluster: str) -> VolumeFiles:
        """The verified snapshot of the volume, read by `cluster`'s mover (empty: the
        backup's own cluster)."""
        found = await ask(bus, queries.QUERY_BACKUP_FILES, lookup, BackupVolumeFound, "protection")
        return cls(bus, cluster or found.cluster, lookup.bucket, found.snapshot_id)

    def _query(self, action: str, path: str, offset: int, limit: int) -> FileQuery:
        return FileQuery.model_validate(
            {
                "bucket": self.bucket,
                "snapshot_id": self.snapshot_id,
                "action": action,
                "path": path,
                "offset": offset,
                "limit": limit,
            }
        )

    async def listing(
        self, path: str, offset: int = 0, limit: int = PAGE_MAX, action: str = "list"
    ) -> FileListing:
        subject = queries.QUERY_MOVER_FILES.format(cluster=self.cluster)
        query = self._query(action, path, offset, limit)
        return await ask(self.bus, subject, query, FileListing, f"the mover of {self.cluster}")

    async def read(self, path: str, offset: int) -> bytes:
        subject = queries.QUERY_MOVER_FILES.format(cluster=self.cluster)
        query = self._query("read", path, offset, CHUNK)
        got = await ask(self.bus, subject, query, FileBytes, f"the mover of {self.cluster}")
        return base64.b64decode(got.data)

    async def content(self, entry: FileEntry) -> AsyncIterator[bytes]:
        offset = 0
        while offset < entry.size:
            chunk = await self.read(entry.path, offset)
            if not chunk:
                raise ApiError(
                    grpc.StatusCode.DATA_LOSS, f"{entry.path} ended at {offset} of {entry.size}"
                )
            offset += len(chunk)
            yield chunk

    async def walk(self, entry: FileEntry) -> AsyncIterator[FileEntry]:
        """`entry` and everything under it, parents first."""
        yield entry
        if entry.type != "dir":
            return
        offset = 0
        while True:
            page = await self.listing(entry.path, offset)
            for child in page.entries:
                async for below in self.walk(child):
                    yield below
            offset += len(page.entries)
            if not page.entries or offset >= page.total:
                return

    async def tar(self, top: FileEntry) -> AsyncIterator[bytes]:
        """A tar of the directory `top`, names starting with its own name."""
        strip = top.path.rsplit("/", 1)[0]
        async for entry in self.walk(top):
            kind = TAR_TYPES.get(entry.type)
            if kind is None:
                continue
            info = tarfile.TarInfo(entry.path[len(strip) :].lstrip("/") or "volume")
            info.type, info.mode, info.mtime = kind, entry.mode, entry.mtime_ns / 1e9
            info.uid, info.gid = entry.uid, entry.gid
            info.size = entry.size if entry.type == "file" else 0
            info.linkname = entry.target
            yield info.tobuf(tarfile.PAX_FORMAT)
            if entry.type == "file":
                async for chunk in self.content(entry):
                    yield chunk
                if padding := -entry.size % BLOCK:
                    yield bytes(padding)
        yield bytes(2 * BLOCK)
