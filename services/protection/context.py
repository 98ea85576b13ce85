"""What protection's flows share: clusters, buckets, bus, and its KV buckets."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from services.protection.hook_store import HookStore
from services.protection.operations import OperationStore
from vessel.buckets import BucketError
from vessel.bus.errors import PermanentError, TemporaryError
from vessel.bus.nats_port import Bus, KeyValue
from vessel.kube.client import KubeCluster
from vessel.objectstore.base import AccessDenied, StoreUnavailable
from vessel.sealed.documents import SealedStore
from vessel.sealed.errors import KeyServiceUnreachable, SealError

T = TypeVar("T")


@dataclass
class Protection:
    bus: Bus
    clusters: dict[str, KubeCluster]
    open_bucket: Callable[[str], SealedStore | Awaitable[SealedStore]]
    """A bucket's store and document key by name (the registry's, or fixed in tests)."""
    operations: OperationStore
    inventory: KeyValue
    waits: KeyValue
    hooks: HookStore | None = None
    """Execution hooks (KV `hooks`); None where a flow runs without them."""
    heads: KeyValue | None = None
    """The newest catalog head number seen per bucket (KV `catalog_heads`); None: a
    restore checks the head's contents but cannot tell a rolled-back one."""
    head_locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def cluster(self, cluster_id: str) -> KubeCluster:
        try:
            return self.clusters[cluster_id]
        except KeyError:
            raise PermanentError(f"cluster {cluster_id!r} is not registered") from None

    async def in_bucket(self, bucket: str, fn: Callable[[SealedStore], T]) -> T:
        """Run a blocking bucket call in a thread, mapping store errors to retry policy."""
        try:
            store = self.open_bucket(bucket)
            if inspect.isawaitable(store):
                store = await store
            return await asyncio.to_thread(fn, store)
        except KeyServiceUnreachable as exc:  # like an unreachable store: retried
            raise TemporaryError(str(exc), delay=5) from exc
        except (BucketError, SealError) as exc:  # unknown bucket, wrong or unavailable key
            raise PermanentError(str(exc)) from exc
        except StoreUnavailable as exc:
            raise TemporaryError(str(exc), delay=5) from exc
        except AccessDenied as exc:
            raise PermanentError(str(exc)) from exc
