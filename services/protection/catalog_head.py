"""The catalog head: a sealed, numbered list of the bucket's complete backups.

`catalog/head.sealed` (role `catalog-head`, owner `catalog`) holds a number raised by
every change and the ids of every complete backup. Protection adds a backup before its
listing entry makes it complete, and removes it after its documents are deleted, so the
head never lacks a backup that is listed. It remembers the newest number it wrote or read
per bucket (KV `catalog_heads`). A restore is refused when the head is older than that
(the bucket, or its catalog, was rolled back), missing while one was seen, or does not
list the backup (deleted, then put back). A fresh install trusts the head it first reads:
a rollback before that is not detected. The head is rewritten, so it is never locked, and
it lies outside what recovery puts back (docs/formats.md).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from services.protection.bucket_catalog import LISTING, CatalogError
from services.protection.context import Protection
from vessel.objectstore.base import ObjectNotFound
from vessel.sealed.documents import SealedStore
from vessel.sealed.errors import SealError

HEAD = "catalog/head.sealed"
ROLE, OWNER = "catalog-head", "catalog"


class CatalogHead(BaseModel):
    format: Literal["vessel.catalog-head/1"] = "vessel.catalog-head/1"
    seq: int = Field(ge=1, description="Raised by every change")
    backups: list[str] = Field(description="Ids of every complete backup, sorted")
    updated: datetime


def read_head(sb: SealedStore) -> CatalogHead | None:
    try:
        return CatalogHead.model_validate(sb.get(HEAD, ROLE, OWNER))
    except ObjectNotFound:
        return None
    except SealError as exc:
        raise CatalogError(str(exc)) from exc
    except ValidationError as exc:
        raise CatalogError(f"{HEAD}: invalid catalog head: {exc.errors()[0]['msg']}") from exc


def _listed(sb: SealedStore) -> set[str]:
    """Backups with a listing entry: the first head of a bucket written before heads."""
    ids = set()
    for key in sb.store.list("backups/"):
        parts = key.split("/")
        if len(parts) == 3 and parts[2] == LISTING and parts[1]:
            ids.add(parts[1])
    return ids


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
    sb.put(HEAD, ROLE, OWNER, new.model_dump(mode="json"))  # never locked (lock.REWRITTEN)
    return new.seq


def check_head(sb: SealedStore, backup_id: str, seen: int) -> int:
    """The head's number, once it shows `backup_id` current and no older than `seen`;
    0 when the bucket has no head and none was ever seen."""
    head = read_head(sb)
    if head is None:
        if seen:
            raise CatalogError(
                f"{HEAD}: missing, though this Vessel saw catalog head {seen} of this bucket: "
                "the bucket was rolled back or its catalog deleted"
            )
        return 0
    if head.seq < seen:
        raise CatalogError(
            f"{HEAD}: catalog head {head.seq} is older than head {seen}, the newest this "
            "Vessel saw: the bucket's catalog was rolled back"
        )
    if backup_id not in head.backups:
        raise CatalogError(
            f"{HEAD}: backup {backup_id} is not in the catalog (head {head.seq}): it was "
            "deleted, or never completed, and its documents were put back"
        )
    return head.seq


def _lock(p: Protection, bucket: str) -> asyncio.Lock:
    # One writer per head: two backups ending at once must not both write head n + 1.
    return p.head_locks.setdefault(bucket, asyncio.Lock())


async def seen_head(p: Protection, bucket: str) -> int:
    entry = await p.heads.get(bucket) if p.heads is not None else None
    return int(entry.value) if entry is not None else 0


async def remember_head(p: Protection, bucket: str, seq: int) -> None:
    if p.heads is not None and seq > await seen_head(p, bucket):
        await p.heads.put(bucket, str(seq).encode())


async def change(
    p: Protection, bucket: str, add: str | None = None, remove: str | None = None
) -> None:
    async with _lock(p, bucket):
        seq = await p.in_bucket(bucket, lambda s: change_head(s, add, remove))
        await remember_head(p, bucket, seq)


async def verify(p: Protection, bucket: str, backup_id: str) -> None:
    """Refuse (CatalogError) a backup the bucket's catalog head does not vouch for."""
    seen = await seen_head(p, bucket)
    seq = await p.in_bucket(bucket, lambda s: check_head(s, backup_id, seen))
    await remember_head(p, bucket, seq)
