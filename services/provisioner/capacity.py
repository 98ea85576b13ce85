"""Capacity: what backends and pools hold, told as events and as metrics.

`pool.capacity.low` is published when a pool's free space falls below its threshold:
checked after a volume is provisioned or grown (and after one is deleted, so a pool that
rose above its threshold again is noticed); once per crossing: a pool already reported
low is reported again only after a check found it above its threshold. `report_capacity`
refreshes the backend and volume gauges of the metrics endpoint on a timer.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections import Counter
from pathlib import Path

from services.provisioner.adapters.base import BackendError, StorageBackend
from services.provisioner.context import ProvisionerContext
from services.provisioner.pools import Pool
from vessel.bus.errors import BusError
from vessel.contracts import subjects
from vessel.contracts.events import PoolCapacityLow
from vessel.telemetry import metrics

log = logging.getLogger("vessel.provisioner")


def backend_total(backend: StorageBackend) -> int:
    """Bytes a backend offers: its configured capacity, else its filesystem's size."""
    capacity = getattr(backend, "capacity_bytes", None)
    if isinstance(capacity, int):
        return capacity
    root = getattr(backend, "root", None)
    return shutil.disk_usage(Path(root)).total if root is not None else 0


def used_bytes(backend: StorageBackend, volume_id: str) -> int | None:
    """Bytes the volume uses now; None when it is not (or no longer) on the backend."""
    try:
        return backend.usage(volume_id).used_bytes
    except BackendError:
        return None


async def report_capacity(env: ProvisionerContext, every: float = 15.0) -> None:
    """Backend free space and volumes for the metrics endpoint, every `every` seconds. A
    tick the bus cannot answer (NATS down) is skipped: the metrics keep their last values
    and the provisioner keeps running."""
    while True:
        try:
            await _measure(env)
        except (TimeoutError, BusError) as exc:
            log.warning("capacity metrics skipped this tick: the bus did not answer (%s)", exc)
        await asyncio.sleep(every)


async def _measure(env: ProvisionerContext) -> None:
    backends = list(env.backends.values())  # backends come and go at runtime
    for backend in backends:
        free = await asyncio.to_thread(backend.free_bytes)
        metrics.BACKEND_FREE.labels(backend.name).set(free)
    counts: Counter[tuple[str, str]] = Counter()
    allocated: Counter[str] = Counter()
    used: Counter[str] = Counter()
    claims: dict[tuple[str, str, str, str], tuple[int, int]] = {}
    for record in await env.volumes.read_all():
        counts[(record.backend, record.state)] += 1
        allocated[record.backend] += record.size_bytes
        holder = env.backends.get(record.backend)
        if holder is not None and record.state in ("Provisioned", "Bound", "Retained"):
            size = await asyncio.to_thread(used_bytes, holder, record.volume_id)
            if size is None:
                continue  # deleted between the listing and now
            used[record.backend] += size
            if record.state == "Bound":
                where = (env.cluster_id, record.namespace, record.claim, env.node_name or "")
                claims[where] = (size, record.size_bytes)
    metrics.VOLUMES.clear()
    for (backend_name, state), count in counts.items():
        metrics.VOLUMES.labels(backend_name, state).set(count)
    for backend in backends:
        metrics.VOLUME_BYTES.labels(backend.name).set(allocated[backend.name])
        metrics.BACKEND_USED.labels(backend.name).set(used[backend.name])
    metrics.VOLUME_USED.clear()  # a claim deleted since is no longer shown
    metrics.VOLUME_CAPACITY.clear()
    for where, (size, capacity) in claims.items():
        metrics.VOLUME_USED.labels(*where).set(size)
        metrics.VOLUME_CAPACITY.labels(*where).set(capacity)


class CapacityWatch:
    """Announces pools whose free space fell below their threshold, once per crossing."""

    def __init__(self, env: ProvisionerContext) -> None:
        self.env = env
        self.low: set[str] = set()
        """Pools reported low and not seen above their threshold since."""
        self.crossings: dict[str, int] = {}

    async def check(self, backend_name: str) -> None:
        """Compare each pool of the backend with its threshold; announce new crossings."""
        backend = self.env.backends.get(backend_name)
        if backend is None:
            return
        backend_free = await asyncio.to_thread(backend.free_bytes)
        backend_free = max(0, backend_free - self.env.reserved_on(backend_name))
        total_backend = await asyncio.to_thread(backend_total, backend)
        for pool in self.env.pools_of(backend_name):
            await self._check_pool(pool, backend_free, total_backend)

    async def _check_pool(self, pool: Pool, backend_free: int, backend_total: int) -> None:
        total, free = backend_total, backend_free
        if pool.capacity_bytes is not None:
            total = min(total, pool.capacity_bytes) if total else pool.capacity_bytes
            free = min(free, max(0, pool.capacity_bytes - self.env.allocated(pool)))
        if total <= 0:
            return
        if free * 100 >= pool.low_capacity_percent * total:
            self.low.discard(pool.id)
            return
        if pool.id in self.low:
            return
        self.low.add(pool.id)
        crossing = self.crossings[pool.id] = self.crossings.get(pool.id, 0) + 1
        log.warning(
            "pool %s: %d of %d bytes free, below %.1f%%",
            pool.id,
            free,
            total,
            pool.low_capacity_percent,
        )
        await self.env.announce.publish(
            subjects.POOL_CAPACITY_LOW,
            PoolCapacityLow(
                cluster=self.env.cluster_id,
                backend=pool.backend,
                pool=pool.name,
                free_bytes=free,
                total_bytes=total,
                threshold_percent=pool.low_capacity_percent,
            ),
            f"{pool.id}/{crossing}/{free}",
        )

    def forget(self, backend_name: str) -> None:
        self.low = {p for p in self.low if not p.startswith(f"{backend_name}:")}
