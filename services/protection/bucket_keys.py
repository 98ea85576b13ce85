"""Protection's way into a bucket: its store and master key, the key opened through the
bucket's key provider once per process and bucket generation (`KeyCache`).

A key source that refuses (a KMS key disabled, a Secret missing) raises `KeyUnavailable`
from here; `ProtectionContext.in_bucket` makes it a permanent error naming the key. A
master key already opened stays usable in this process until the bucket is re-registered
or the process restarts: revoking a KMS key stops new processes, not running ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from vessel.buckets import BucketRegistry
from vessel.sealed.documents import KeyCache, SealedStore


def bucket_opener(registry: BucketRegistry) -> Callable[[str], Awaitable[SealedStore]]:
    keys = KeyCache()

    async def open_bucket(name: str) -> SealedStore:
        opened = await registry.open(name)
        like = (await open_bucket(opened.like)).master if opened.like else None
        master = await asyncio.to_thread(
            keys.master_key,
            name,
            id(opened),
            opened.store,
            opened.repository,
            opened.key_provider(),
            like,
        )
        return SealedStore(opened.store, master)

    return open_bucket
