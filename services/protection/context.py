"""What protection's flows share: clusters, buckets, bus, and its KV buckets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from services.protection.operations import OperationStore
from vessel.bus.errors import PermanentError, TemporaryError
from vessel.bus.nats_port import Bus, KeyValue
from vessel.kube.client import KubeCluster
from vessel.objectstore.base import AccessDenied, ObjectStore, StoreUnavailable

T = TypeVar("T")


@dataclass
class Protection:
    bus: Bus
    clusters: dict[str, KubeCluster]
    open_bucket: Callable[[str], ObjectStore]
    operations: OperationStore
    inventory: KeyValue
    waits: KeyValue

    def cluster(self, cluster_id: str) -> KubeCluster:
        try:
            return self.clusters[cluster_id]
        except KeyError:
            raise PermanentError(f"cluster {cluster_id!r} is not registered") from None

    async def in_bucket(self, bucket: str, fn: Callable[[ObjectStore], T]) -> T:
        """Run a blocking bucket call in a thread, mapping store errors to retry policy."""
        try:
            return await asyncio.to_thread(fn, self.open_bucket(bucket))
        except StoreUnavailable as exc:
            raise TemporaryError(str(exc), delay=5) from exc
        except AccessDenied as exc:
            raise PermanentError(str(exc)) from exc
