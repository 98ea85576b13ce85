"""The provisioner's one shared context: what every part of it reads and changes.

Ports (Kubernetes, the announcer), the record stores, the backends and pools serving now,
the work queue and the informers' caches. Backends and pools change at run time (backend
commands), so readers take them from here each time instead of keeping a copy; `placement`
serialises choosing a pool with changing the pools. The `Provisioner` (controller.py)
builds it, because the work queue it holds dispatches to the reconciler.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from services.provisioner.adapters.base import StorageBackend
from services.provisioner.announce import Announcer
from services.provisioner.pools import Pool
from services.provisioner.state import RecordStore, SnapshotRecord, VolumeRecord
from services.provisioner.workqueue import WorkQueue
from vessel.config import PROVISIONER_NAME
from vessel.kube.client import KubeCluster
from vessel.kube.informer import Informer
from vessel.kube.objects import KubeObject, annotations_of, labels_of

SNAPSHOT_API = "snapshot.storage.k8s.io/v1"
CLUSTER_LABEL = "vessel.io/cluster"


@dataclass
class ProvisionerContext:
    """One per cluster served; `Provisioner.env` is the provisioner's."""

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

    def claim(self, namespace: str, name: str) -> KubeObject | None:
        return self.claims.cache.get(f"{namespace}/{name}")

    def storage_class(self, name: str) -> KubeObject | None:
        return self.classes.cache.get(f"/{name}")

    def pv(self, name: str) -> KubeObject | None:
        return self.pvs.cache.get(f"/{name}")

    def snapshot(self, namespace: str, name: str) -> KubeObject | None:
        cache = self.vsnapshots.cache if self.vsnapshots else {}
        return cache.get(f"{namespace}/{name}")

    def snapshot_class(self, name: str | None) -> KubeObject | None:
        """The named VolumeSnapshotClass, or the default one of our driver."""
        cache = self.vsclasses.cache if self.vsclasses else {}
        if name:
            return cache.get(f"/{name}")
        for obj in cache.values():
            default = annotations_of(obj).get("snapshot.storage.kubernetes.io/is-default-class")
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

    def is_ours(self, pv: KubeObject) -> bool:
        return (
            annotations_of(pv).get("pv.kubernetes.io/provisioned-by") == PROVISIONER_NAME
            and labels_of(pv).get(CLUSTER_LABEL) == self.cluster_id
        )
