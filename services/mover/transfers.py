"""Command handlers: copy a volume into a bucket, or back out of one.

A transfer's outcome is recorded in the `transfers` KV bucket (owned by the mover), so a
redelivered command answers with the recorded result instead of copying again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from services.mover.repository import CorruptData, DataRepository, UnsafePath
from vessel.bus.errors import TemporaryError
from vessel.bus.nats_port import Bus, KeyValue
from vessel.contracts import catalog
from vessel.contracts.commands import MoveFromBucket, MoveToBucket
from vessel.contracts.events import TransferResult
from vessel.objectstore.base import ObjectStoreError, StoreUnavailable

log = logging.getLogger("vessel.mover")
RepositoryFor = Callable[[str], DataRepository]


class Mover:
    def __init__(
        self, cluster_id: str, bus: Bus, transfers: KeyValue, repository_for: RepositoryFor
    ) -> None:
        self.cluster_id = cluster_id
        self.bus = bus
        self.transfers = transfers
        self.repository_for = repository_for

    async def _replay(self, transfer_id: str) -> bool:
        entry = await self.transfers.get(transfer_id)
        if entry is None:
            return False
        result = TransferResult.model_validate_json(entry.value)
        await self._announce(result)
        return True

    async def _finish(self, result: TransferResult) -> None:
        await self.transfers.put(result.transfer_id, result.model_dump_json().encode())
        await self._announce(result)

    async def _announce(self, result: TransferResult) -> None:
        message = catalog.TRANSFER_FAILED if result.error else catalog.TRANSFER_COMPLETED
        await self.bus.publish(
            message, result, subject=f"/clusters/{self.cluster_id}/transfers/{result.transfer_id}"
        )

    async def to_bucket(self, cmd: MoveToBucket) -> None:
        if await self._replay(cmd.transfer_id):
            return
        base = TransferResult(
            transfer_id=cmd.transfer_id,
            operation_id=cmd.operation_id,
            cluster=self.cluster_id,
            direction="backup",
        )
        source = Path(cmd.source_path)
        if not await asyncio.to_thread(source.is_dir):
            await self._finish(
                base.model_copy(update={"error": f"source {source} is not a directory"})
            )
            return
        try:
            key, manifest = await asyncio.to_thread(
                self.repository_for(cmd.bucket).backup, source, cmd.prefix
            )
        except StoreUnavailable as exc:
            raise TemporaryError(str(exc), delay=5) from exc
        except (ObjectStoreError, OSError) as exc:
            await self._finish(base.model_copy(update={"error": str(exc)}))
            return
        files = sum(1 for e in manifest.entries if e.type == "file")
        log.info(
            "transfer %s: %d files, %d bytes to %s", cmd.transfer_id, files, manifest.bytes, key
        )
        await self._finish(
            base.model_copy(update={"files": files, "bytes": manifest.bytes, "manifest_key": key})
        )

    async def from_bucket(self, cmd: MoveFromBucket) -> None:
        if await self._replay(cmd.transfer_id):
            return
        base = TransferResult(
            transfer_id=cmd.transfer_id,
            operation_id=cmd.operation_id,
            cluster=self.cluster_id,
            direction="restore",
            manifest_key=cmd.manifest_key,
        )
        target = Path(cmd.target_path)
        if not await asyncio.to_thread(target.is_dir):
            await self._finish(
                base.model_copy(update={"error": f"target {target} is not a directory"})
            )
            return
        try:
            manifest = await asyncio.to_thread(
                self.repository_for(cmd.bucket).restore, cmd.manifest_key, target
            )
        except StoreUnavailable as exc:
            raise TemporaryError(str(exc), delay=5) from exc
        except (ObjectStoreError, CorruptData, UnsafePath, OSError) as exc:
            await self._finish(base.model_copy(update={"error": str(exc)}))
            return
        files = sum(1 for e in manifest.entries if e.type == "file")
        await self._finish(base.model_copy(update={"files": files, "bytes": manifest.bytes}))
