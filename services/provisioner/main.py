"""Entry point: `vessel-provisioner --cluster ID` serves one cluster's claims and snapshots."""

from __future__ import annotations

import asyncio
from collections import Counter

from services.provisioner.backend_admin import BackendAdmin
from services.provisioner.backends.base import BackendError, StorageBackend
from services.provisioner.controller import Provisioner
from services.provisioner.queries import serve_queries
from services.provisioner.records import VolumeRecord
from vessel.kube.client import KubeCluster
from vessel.runtime import ServiceContext, run_service
from vessel.telemetry import metrics


async def serve(ctx: ServiceContext) -> None:
    assert ctx.cluster is not None
    cluster = ctx.settings.cluster(ctx.cluster)
    kube = KubeCluster(cluster.kubeconfig, cluster.id)
    provisioner = Provisioner(
        cluster.id,
        kube,
        ctx.bus,
        await ctx.bus.kv("volumes"),
        [],
        snapshots=await ctx.bus.kv("snapshots"),
        pools=[],
        resync_seconds=ctx.settings.provisioner_resync_seconds,
        autogrow_seconds=ctx.settings.provisioner_autogrow_seconds,
        node_name=cluster.node_name,
    )
    admin = BackendAdmin(provisioner.env, ctx.bus, await ctx.bus.kv("backends"), cluster.backends)
    await admin.load()  # configured backends, then those added at runtime
    await asyncio.gather(
        provisioner.run(),
        admin.serve(provisioner.ready),
        provisioner.groups.serve(ctx.bus, provisioner.ready),
        serve_queries(provisioner.env, ctx.bus, provisioner.ready),
        report_capacity(provisioner.env.backends, ctx),
    )


async def report_capacity(
    serving: dict[str, StorageBackend], ctx: ServiceContext, every: float = 15.0
) -> None:
    """Backend free space and volumes for the metrics endpoint, every `every` seconds."""
    volumes = await ctx.bus.kv("volumes")
    while True:
        backends = list(serving.values())  # backends come and go at runtime
        for backend in backends:
            free = await asyncio.to_thread(backend.free_bytes)
            metrics.BACKEND_FREE.labels(backend.name).set(free)
        counts: Counter[tuple[str, str]] = Counter()
        allocated: Counter[str] = Counter()
        used: Counter[str] = Counter()
        for key in await volumes.keys():
            entry = await volumes.get(key) if key.startswith(f"{ctx.cluster}.") else None
            if entry is not None:
                record = VolumeRecord.model_validate_json(entry.value)
                counts[(record.backend, record.state)] += 1
                allocated[record.backend] += record.size_bytes
                holder = serving.get(record.backend)
                if holder is not None and record.state in ("Provisioned", "Bound", "Retained"):
                    size = await asyncio.to_thread(_used, holder, record.volume_id)
                    used[record.backend] += size
        metrics.VOLUMES.clear()
        for (backend_name, state), count in counts.items():
            metrics.VOLUMES.labels(backend_name, state).set(count)
        for backend in backends:
            metrics.VOLUME_BYTES.labels(backend.name).set(allocated[backend.name])
            metrics.VOLUME_USED.labels(backend.name).set(used[backend.name])
        await asyncio.sleep(every)


def _used(backend: StorageBackend, volume_id: str) -> int:
    try:
        return backend.usage(volume_id).used_bytes
    except BackendError:
        return 0  # deleted between the listing and now


def main() -> None:
    run_service("provisioner", serve, per_cluster=True)
