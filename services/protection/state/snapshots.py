"""KV `app_snapshots`: one `AppSnapshotRecord` per app snapshot id, written by protection
and read by the gateway (the record model is a contract for that reason)."""

from __future__ import annotations

from vessel.bus.nats_port import KeyValue
from vessel.contracts.protection import AppSnapshotRecord


class AppSnapshotStore:
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def get(self, snapshot_id: str) -> AppSnapshotRecord | None:
        entry = await self.kv.get(snapshot_id)
        return AppSnapshotRecord.model_validate_json(entry.value) if entry else None

    async def save(self, record: AppSnapshotRecord) -> None:
        await self.kv.put(record.id, record.model_dump_json().encode())

    async def delete(self, snapshot_id: str) -> None:
        await self.kv.delete(snapshot_id)
