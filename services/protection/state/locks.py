"""KV `protection_locks`: `inplace.<app_id>` holds the id of the in-place restore running
on the app. Taken with an atomic KV `create`, so two restores of one app never both run;
the scheduler pauses the app's schedules while the key exists."""

from __future__ import annotations

from vessel.bus.errors import KeyExistsError
from vessel.bus.nats_port import KeyValue


def lock_key(app_id: str) -> str:
    return f"inplace.{app_id}"


class InPlaceLocks:
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def take(self, app_id: str, op_id: str) -> str | None:
        """None once the app's lock is this operation's (taken now, or held before: a
        repeated step); else the operation holding it ("?" if it was just released)."""
        try:
            await self.kv.create(lock_key(app_id), op_id.encode())
        except KeyExistsError:
            holder = await self.holder(app_id)
            return None if holder == op_id else (holder if holder is not None else "?")
        return None

    async def value(self, app_id: str) -> bytes | None:
        """The lock's value as stored; None when the app is not locked."""
        entry = await self.kv.get(lock_key(app_id))
        return entry.value if entry is not None else None

    async def holder(self, app_id: str) -> str | None:
        found = await self.value(app_id)
        return found.decode() if found is not None else None

    async def release(self, app_id: str, op_id: str) -> None:
        """Release the lock if this operation holds it."""
        if await self.holder(app_id) == op_id:
            await self.kv.delete(lock_key(app_id))
