"""The catalog head: a sealed, numbered list of the bucket's complete backups.

`catalog/head.sealed` (`CATALOG_HEAD_KEY`; role `catalog-head`, owner `catalog`) holds a
number raised by every change and the ids of every complete backup. Protection adds a
backup before its listing entry makes it complete, and removes it after its documents are
deleted, so the head never lacks a backup that is listed. It remembers the newest number
it wrote or read per bucket (KV `catalog_heads`, as decimal text: `state/heads.py`). A
restore is refused when the head is older than that (the bucket, or its catalog, was
rolled back), missing while one was seen, or does not list the backup (deleted, then put
back). A fresh install trusts the head it first reads: a rollback before that is not
detected. The head is rewritten, so it is never locked, and it lies outside what recovery
puts back (docs/formats.md).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from services.protection.bucket_catalog import CatalogError
from services.protection.context import ProtectionContext
from vessel.contracts.state import BACKUPS_PREFIX, CATALOG_HEAD_KEY, listed_backup_id
from vessel.objectstore.base import ObjectNotFound
from vessel.sealed.documents import SealedStore
from vessel.sealed.errors import SealError

ROLE, OWNER = "catalog-head", "catalog"


class CatalogHead(BaseModel):
    format: Literal["vessel.catalog-head/1"] = "vessel.catalog-head/1"
    seq: int = Field(ge=1, description="Raised by every change")
    backups: list[str] = Field(description="Ids of every complete backup, sorted")
    updated: datetime


def read_head(sb: SealedStore) -> CatalogHead | None:
    try:
        return CatalogHead.model_validate(sb.get(CATALOG_HEAD_KEY, ROLE, OWNER))
    except ObjectNotFound:
        return None
    except SealError as exc:
        raise CatalogError(str(exc)) from exc
    except ValidationError as exc:
        why = exc.errors()[0]["msg"]
        raise CatalogError(f"{CATALOG_HEAD_KEY}: invalid catalog head: {why}") from exc


def _listed(sb: SealedStore) -> set[str]:
    """Backups with a listing entry: the first head of a bucket written before heads."""
    return {found for key in sb.store.list(BACKUPS_PREFIX) if (found := listed_backup_id(key))}


def change_head(sb: SealedStore, add: str | None = None, remove: str | None = None) -> int:
    """Write the next head with `add` in it and `remove` out of it; its number."""
    head = read_head(sb)
    ids = set(head.backups) if head is not None else _listed(sb)
    if add is not None:
        ids.add(add)
    ids.discard(remove or "")
    if head is not None and ids == set(head.backups):
        return head.seq  # nothing changes (a repeated deletion, a retried backup)
    new = CatalogHead(
        seq=(head.seq if head is not None else 0) + 1,
        backups=sorted(ids),
        updated=datetime.now(UTC),
    )
    # Never locked: the head is among the lock wrapper's rewritten objects.
    sb.put(CATALOG_HEAD_KEY, ROLE, OWNER, new.model_dump(mode="json"))
    return new.seq


def check_head(sb: SealedStore, backup_id: str, seen: int) -> int:
    """The head's number, once it shows `backup_id` current and no older than `seen`;
    0 when the bucket has no head and none was ever seen."""
    head = read_head(sb)
    if head is None:
        if seen:
            raise CatalogError(
                f"{CATALOG_HEAD_KEY}: missing, though this Vessel saw catalog head {seen} of "
                "this bucket: the bucket was rolled back or its catalog deleted"
            )
        return 0
    if head.seq < seen:
        raise CatalogError(
            f"{CATALOG_HEAD_KEY}: catalog head {head.seq} is older than head {seen}, the "
            "newest this Vessel saw: the bucket's catalog was rolled back"
        )
    if backup_id not in head.backups:
        raise CatalogError(
            f"{CATALOG_HEAD_KEY}: backup {backup_id} is not in the catalog (head {head.seq}): "
            "it was deleted, or never completed, and its documents were put back"
        )
    return head.seq


def _lock(p: ProtectionContext, bucket: str) -> asyncio.Lock:
    # One writer per head: two backups ending at once must not both write head n + 1.
    return p.head_locks.setdefault(bucket, asyncio.Lock())


async def change(
    p: ProtectionContext, bucket: str, add: str | None = None, remove: str | None = None
) -> None:
    async with _lock(p, bucket):
        seq = await p.in_bucket(bucket, lambda s: change_head(s, add, remove))
        await p.catalog_heads.remember(bucket, seq)


async def verify(p: ProtectionContext, bucket: str, backup_id: str) -> None:
    """Refuse (CatalogError) a backup the bucket's catalog head does not vouch for."""
    seen = await p.catalog_heads.seen(bucket)
    seq = await p.in_bucket(bucket, lambda s: check_head(s, backup_id, seen))
    await p.catalog_heads.remember(bucket, seq)
