"""What a verification needs before it restores: which backup (`newest_backup`), its
scratch namespaces (`scratch_names`) and a slot of the target cluster (`Slots`).

Slots are keys `verify.<cluster>.<n>` of KV `protection_locks`, each taken with an atomic
create and holding the verification's id; a verification finding none free is queued
under `verify-queue.<cluster>.<op>` (value: when, for the order) and started when one
frees. A slot whose holder is no longer running is taken over, so a verification that
died never blocks its cluster.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Awaitable, Callable

from services.protection.bucket_catalog import BackupListing, CatalogError
from vessel.bus.errors import KeyExistsError
from vessel.bus.nats_port import KeyValue
from vessel.contracts import state
from vessel.objectstore.base import ObjectNotFound, ObjectStore

Alive = Callable[[str], Awaitable[bool]]


def newest_backup(store: ObjectStore, app_id: str, backup_id: str | None) -> BackupListing:
    """The listing of `backup_id`, or of the app's most recently completed backup (the
    sealed record is checked by the restore, as for any restore)."""
    ids = [backup_id] if backup_id else []
    if not ids:
        listed = (state.listed_backup_id(k) for k in store.list(state.BACKUPS_PREFIX))
        ids = [i for i in listed if i is not None]
    found: list[BackupListing] = []
    for one in ids:
        try:
            doc = json.loads(store.get_bytes(state.backup_key(one, state.BACKUP_LISTING)))
            listing = BackupListing.model_validate(doc)
        except ObjectNotFound:
            if backup_id:
                raise CatalogError(f"backup {backup_id} is not in the bucket") from None
            continue
        except ValueError as exc:
            if backup_id:
                raise CatalogError(f"backup {backup_id}: unreadable listing ({exc})") from None
            continue  # another backup's broken listing does not stop this app's verification
        if listing.app_id == app_id:
            found.append(listing)
        elif backup_id:
            raise CatalogError(f"backup {backup_id} is a backup of {listing.app_id}, not {app_id}")
    if not found:
        raise CatalogError(f"app {app_id} has no backup in this bucket to verify")
    return max(found, key=lambda listing: listing.completed)


def scratch_names(op_id: str, namespaces: list[str]) -> dict[str, str]:
    """Each namespace of the backup → `vessel-verify-<hash of the operation>[-n]`."""
    tag = hashlib.sha256(op_id.encode()).hexdigest()[:10]
    return {ns: f"vessel-verify-{tag}" + (f"-{n}" if n else "") for n, ns in enumerate(namespaces)}


class Slots:
    def __init__(self, kv: KeyValue, per_cluster: int) -> None:
        self.kv, self.per_cluster = kv, max(per_cluster, 1)

    async def take(self, cluster: str, op_id: str, alive: Alive) -> str | None:
        """None once `op_id` holds a slot of `cluster`; else it is queued and the answer
        is the holder of a slot."""
        holder = "?"
        for n in range(self.per_cluster):
            key = f"verify.{cluster}.{n}"
            try:
                await self.kv.create(key, op_id.encode())
                await self.unqueue(cluster, op_id)
                return None
            except KeyExistsError:
                entry = await self.kv.get(key)
                holder = entry.value.decode() if entry else "?"
                if holder == op_id:
                    return None
                if entry is not None and not await alive(holder):
                    await self.kv.delete(key)  # its verification ended without freeing it
                    return await self.take(cluster, op_id, alive)
        await self.kv.put(f"verify-queue.{cluster}.{op_id}", str(time.time()).encode())
        return holder

    async def release(self, cluster: str, op_id: str) -> None:
        for n in range(self.per_cluster):
            entry = await self.kv.get(f"verify.{cluster}.{n}")
            if entry is not None and entry.value.decode() == op_id:
                await self.kv.delete(f"verify.{cluster}.{n}")
        await self.unqueue(cluster, op_id)

    async def queued(self, cluster: str) -> list[str]:
        """The queued verifications of `cluster`, oldest first."""
        prefix = f"verify-queue.{cluster}."
        waiting = []
        for key in await self.kv.keys(prefix.rstrip(".")):
            entry = await self.kv.get(key)
            if entry is not None:
                waiting.append((float(entry.value or b"0"), key[len(prefix) :]))
        return [op_id for _, op_id in sorted(waiting)]

    async def unqueue(self, cluster: str, op_id: str) -> None:
        await self.kv.delete(f"verify-queue.{cluster}.{op_id}")
