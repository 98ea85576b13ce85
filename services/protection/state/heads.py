"""KV `catalog_heads`: per bucket, the newest catalog head number this Vessel wrote or
read, as decimal text. A head older than it means the bucket's catalog was rolled back
(`catalog_head.py`)."""

from __future__ import annotations

from vessel.bus.nats_port import KeyValue


class CatalogHeads:
    def __init__(self, kv: KeyValue | None) -> None:
        self.kv = kv
        """None: nothing is remembered, so a rolled-back head cannot be told (tests)."""

    async def seen(self, bucket: str) -> int:
        """The newest head number seen of `bucket`; 0 when none was."""
        entry = await self.kv.get(bucket) if self.kv is not None else None
        return int(entry.value) if entry is not None else 0

    async def remember(self, bucket: str, seq: int) -> None:
        if self.kv is not None and seq > await self.seen(bucket):
            await self.kv.put(bucket, str(seq).encode())
