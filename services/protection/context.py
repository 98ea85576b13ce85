"""`ProtectionContext`: what protection's flows share. Clusters (through their agents),
buckets, the bus, and the KV state the service owns (`state/`).

`main.py` builds it from the settings and the buckets every flow reads; the other KV
buckets of the state catalogue are opened on first use (`kv`), so a flow run on its own
(in tests) needs a context with only the first six fields.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

from services.protection.agents import Clusters
from services.protection.state.heads import CatalogHeads
from services.protection.state.hooks import HookStore
from services.protection.state.locks import InPlaceLocks
from services.protection.state.operations import OperationStore
from services.protection.state.snapshots import AppSnapshotStore
from services.protection.state.waits import RestoreWaits
from vessel.buckets import BucketError, BucketRegistry
from vessel.bus.errors import PermanentError, TemporaryError
from vessel.bus.nats_port import Bus, KeyValue
from vessel.contracts import state
from vessel.kube.port import KubeApi
from vessel.objectstore.base import AccessDenied, StoreUnavailable
from vessel.sealed.documents import SealedStore
from vessel.sealed.errors import KeyServiceUnreachable, SealError

T = TypeVar("T")


@dataclass
class ProtectionContext:
    bus: Bus
    clusters: Clusters
    """The registered clusters, each reached through its agent (`agents.py`)."""
    open_bucket: Callable[[str], SealedStore | Awaitable[SealedStore]]
    """A bucket's store and document key by name (the registry's, or fixed in tests)."""
    operations: OperationStore
    inventory: KeyValue
    """KV `inventory` (discovery's): the apps, read by key `apps.<app id>`."""
    waits: KeyValue
    """KV `restore_waits`, read and written through `restore_waits`."""
    hooks: HookStore | None = None
    """KV `hooks`; opened on first use when not given (`hook_store`)."""
    heads: KeyValue | None = None
    """KV `catalog_heads`, through `catalog_heads`; None: a restore checks the head's
    contents but cannot tell a rolled-back one."""
    head_locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    """One writer per bucket's catalog head in this process."""
    registry: BucketRegistry | None = None
    """The registered buckets, for the bucket commands and catalog reads (the inbox); None
    where flows run with a fixed `open_bucket`."""
    schedule_grace: timedelta = timedelta(seconds=60)
    """A due time found later than this was missed (the scheduler)."""
    store_retry: float = 5.0
    """First wait before work whose bucket is unreachable is tried again (doubling)."""
    operation_stall: timedelta = timedelta(hours=1)
    """An operation not ended that showed no change nor progress this long is failed."""
    verification_slots: int = 1
    """Verifications running at once per cluster; later ones queue."""
    verification_quota: dict[str, str] = field(default_factory=dict)
    """The ResourceQuota `hard` of a verification's scratch namespaces (empty: none)."""
    opened: dict[str, KeyValue] = field(default_factory=dict, init=False, repr=False)
    """KV buckets opened by `kv`, by name."""

    @property
    def restore_waits(self) -> RestoreWaits:
        return RestoreWaits(self.waits)

    @property
    def catalog_heads(self) -> CatalogHeads:
        return CatalogHeads(self.heads)

    async def kv(self, bucket: state.KvBucket) -> KeyValue:
        """A KV bucket of the state catalogue, opened once per context."""
        if bucket.name not in self.opened:
            self.opened[bucket.name] = await self.bus.kv(bucket.name)
        return self.opened[bucket.name]

    async def hook_store(self) -> HookStore:
        if self.hooks is None:
            self.hooks = HookStore(await self.kv(state.HOOKS))
        return self.hooks

    async def snapshot_store(self) -> AppSnapshotStore:
        return AppSnapshotStore(await self.kv(state.APP_SNAPSHOTS))

    async def lock_store(self) -> InPlaceLocks:
        return InPlaceLocks(await self.kv(state.PROTECTION_LOCKS))

    async def cluster(self, cluster_id: str) -> KubeApi:
        found = await self.clusters.kube(cluster_id)
        if found is None:
            raise PermanentError(f"cluster {cluster_id!r} is not registered")
        return found

    async def in_bucket(self, bucket: str, fn: Callable[[SealedStore], T]) -> T:
        """Run a blocking bucket call in a thread, mapping store errors to retry policy."""
        try:
            store = self.open_bucket(bucket)
            if inspect.isawaitable(store):
                store = await store
            return await asyncio.to_thread(fn, store)
        except KeyServiceUnreachable as exc:  # like an unreachable store: retried
            raise TemporaryError(str(exc), delay=self.store_retry) from exc
        except (BucketError, SealError) as exc:  # unknown bucket, wrong or unavailable key
            raise PermanentError(str(exc)) from exc
        except StoreUnavailable as exc:
            raise TemporaryError(str(exc), delay=self.store_retry) from exc
        except AccessDenied as exc:
            raise PermanentError(str(exc)) from exc
