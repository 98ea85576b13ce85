"""The KV records the gateway owns (vessel.contracts.state): submitted requests, API
tokens, and its own activity records.

- `requests`: what the first call with a request id did, so a retry answers the same and
  publishes nothing twice: the operation it submitted (`op.<operation id>`, until
  protection records it in `operations`), the schedule or hook it put or removed
  (`schedule.`, `hook.`, `hook-remove.<request id>`), the admin command it sent
  (`admin.<operation id>`).
- `tokens`: one record per API token, under its name, never holding the secret.
- `activity`: the records of the gateway's admin actions without an operation (tokens,
  backends, clusters); protection writes those of operations (vessel.contracts.activity).

Stores only read and write; who may and what a token means is `auth/`'s business.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from vessel.bus.errors import KeyExistsError
from vessel.bus.nats_port import KeyValue
from vessel.contracts.activity import ActivityRecord, activity_key
from vessel.contracts.operations import Operation, now

RequestKind = Literal["op", "schedule", "hook", "hook-remove", "admin"]
"""What a key of `requests` stands for: its first part."""
SUBMITTED: RequestKind = "op"


class Requests:
    """KV `requests`: idempotency by request id."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def submit(self, op: Operation) -> bool:
        """Record a submitted operation; False when one with its id was submitted before."""
        return await self.remember(SUBMITTED, op.id, op.model_dump_json().encode())

    async def submitted(self, op_id: str) -> Operation | None:
        value = await self.remembered(SUBMITTED, op_id)
        return None if value is None else Operation.model_validate_json(value)

    async def every_submitted(self) -> dict[str, Operation]:
        """Every operation submitted, by id."""
        found: dict[str, Operation] = {}
        for key in await self.kv.keys():
            if not key.startswith(f"{SUBMITTED}."):
                continue
            entry = await self.kv.get(key)
            if entry is not None and entry.value:
                op = Operation.model_validate_json(entry.value)
                found[op.id] = op
        return found

    async def remember(self, kind: RequestKind, ident: str, value: bytes) -> bool:
        """Store `value` for the first request of this kind and id; False for a later one."""
        try:
            await self.kv.create(f"{kind}.{ident}", value)
        except KeyExistsError:
            return False
        return True

    async def remembered(self, kind: RequestKind, ident: str) -> bytes | None:
        entry = await self.kv.get(f"{kind}.{ident}")
        return None if entry is None else entry.value


class TokenRecord(BaseModel):
    """The KV value under the token's name. Never holds the secret."""

    model_config = ConfigDict(extra="forbid")
    name: str
    role: str
    clusters: list[str]
    namespaces: list[str]
    sha256: str
    created: datetime
    expires: datetime | None = None
    created_by: str


class TokenStore:
    """KV `tokens`: one record per token name."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def create(self, record: TokenRecord) -> None:
        """KeyExistsError when the name is taken."""
        await self.kv.create(record.name, record.model_dump_json().encode())

    async def get(self, name: str) -> TokenRecord | None:
        entry = await self.kv.get(name)
        return TokenRecord.model_validate_json(entry.value) if entry else None

    async def list(self) -> list[TokenRecord]:
        records = [await self.get(key) for key in sorted(await self.kv.keys())]
        return [r for r in records if r is not None]

    async def revoke(self, name: str) -> TokenRecord | None:
        record = await self.get(name)
        if record is not None:
            await self.kv.delete(name)
        return record

    async def any(self) -> bool:
        return bool(await self.kv.keys())


class ActivityLog:
    """KV `activity`: the gateway writes its admin actions and reads every record."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def record(
        self,
        action: str,
        target: str,
        outcome: str,
        *,
        identity: str,
        message: str = "",
        cluster: str = "",
        namespaces: Iterable[str] = (),
        operation_id: str = "",
    ) -> ActivityRecord:
        entry = ActivityRecord(
            id=operation_id or f"{action}-{uuid.uuid4().hex[:12]}",
            time=now(),
            identity=identity,
            action=action,
            target=target,
            operation_id=operation_id,
            outcome=outcome,
            message=message,
            cluster=cluster,
            namespaces=list(namespaces),
        )
        await self.kv.put(activity_key(entry.time, entry.id), entry.model_dump_json().encode())
        return entry

    async def newest_first(self, before: str | None) -> AsyncIterator[tuple[str, ActivityRecord]]:
        """(key, record) of every record, newest first, from the one before key `before`."""
        for key in sorted(await self.kv.keys(), reverse=True):
            if before is not None and key >= before:
                continue
            entry = await self.kv.get(key)
            if entry is not None and entry.value:
                yield key, ActivityRecord.model_validate_json(entry.value)
