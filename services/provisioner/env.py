"""What every part of the provisioner shares: ports, records, backends, pools, caches."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from services.provisioner.announce import Announcer
from services.provisioner.backends.base import StorageBackend
from services.provisioner.pools import Pool
from services.provisioner.records import RecordStore, SnapshotRecord, VolumeRecord
from services.provisioner.workqueue import WorkQueue
from vessel.config import PROVISIONER_NAME
from vessel.kube.client import KubeCluster
from vessel.kube.informer import Informer

Obj = dict[str, Any]
SNAPSHOT_API = "snapshot.storage.k8s.io/v1"
CLUSTER_LABEL = "vessel.io/cluster"


@dataclass
class Env:
    cluster_id: str
    kube: KubeCluster
    announce: Announcer
    volumes: RecordStore[VolumeRecord]
    snapshots: RecordStore[SnapshotRecord]
    backends: dict[str, StorageBackend]
    pools: list[Pool]
    queue: WorkQueue
    claims: Informer
    pvs: Informer
    classes: Informer
    vsnapshots: Informer | None = None
    vsclasses: Informer | None = None
    placement: asyncio.Lock = field(default_factory=asyncio.Lock)
    reserved: dict[str, tuple[str, int]] = field(default_factory=dict)
    """Volumes placed but not on their backend yet: volume id → (backend, bytes)."""
    node_name: str | None = None
    """The node the backends live on: PVs get node affinity to it."""
    on_capacity_change: Callable[[str], Awaitable[None]] | None = None
    """Called with a backend's name after a volume on it was created, grown or deleted."""

    async def capacity_changed(self, backend: str) -> None:
        if self.on_capacity_change is not None:
            await self.on_capacity_change(backend)

    def reserved_on(self, backend: str) -> int:
        return sum(size for name, size in self.reserved.values() if name == backend)

    def claim(self, namespace: str, name: str) -> Obj | None:
        return self.claims.cache.get(f"{namespace}/{name}")

    def storage_class(self, name: str) -> Obj | None:
        return self.classes.cache.get(f"/{name}")

    def pv(self, name: str) -> Obj | None:
        return self.pvs.cache.get(f"/{name}")

    def snapshot(self, namespace: str, name: str) -> Obj | None:
        cache = self.vsnapshots.cache if self.vsnapshots else {}
        return cache.get(f"{namespace}/{name}")

    def snapshot_class(self, name: str | None) -> Obj | None:
        """The named VolumeSnapshotClass, or the default one of our driver."""
        cache = self.vsclasses.cache if self.vsclasses else {}
        if name:
            return cache.get(f"/{name}")
        for obj in cache.values():
            annotations = obj["metadata"].get("annotations") or {}
            default = annotations.get("snapshot.storage.kubernetes.io/is-default-class")
            if default == "true" and obj.get("driver") == PROVISIONER_NAME:
                return obj
        return None

    def pools_of(self, backend: str) -> list[Pool]:
        return [p for p in self.pools if p.backend == backend]

    def allocated(self, pool: Pool) -> int:
        """Bytes the volumes recorded in `pool` hold (kept ones included)."""
        return sum(
            r.size_bytes
            for r in self.volumes.all()
            if r.backend == pool.backend and r.pool == pool.name
        )

    def is_ours(self, pv: Obj) -> bool:
        meta = pv["metadata"]
        annotations = meta.get("annotations") or {}
        return (
            annotations.get("pv.kubernetes.io/provisioned-by") == PROVISIONER_NAME
            and (meta.get("labels") or {}).get(CLUSTER_LABEL) == self.cluster_id
        )
