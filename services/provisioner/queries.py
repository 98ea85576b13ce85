"""The provisioner's per-cluster queries (`vessel.query.provisioner.<cluster>.*`), answered
over core NATS from what it serves now: backends with pools, capacity and free space; the
cluster's StorageClasses from its informer; the space its volumes use.

The gateway asks these instead of reading backends or Kubernetes itself. A bad request is
answered `QueryFailed` naming the problem; a backend that cannot be measured right now
reports 0 free rather than failing the whole answer.
"""

from __future__ import annotations

import asyncio
import logging

from pydantic import ValidationError

from services.provisioner.adapters.base import BackendError, StorageBackend
from services.provisioner.capacity import backend_total, used_bytes
from services.provisioner.context import ProvisionerContext
from vessel.config import PROVISIONER_NAME
from vessel.contracts import queries
from vessel.contracts.events import QueryFailed
from vessel.contracts.infra_queries import (
    BackendInfo,
    BackendList,
    BackendQuery,
    PoolInfo,
    StorageClassInfo,
    StorageClassList,
    StorageClassQuery,
    VolumeUsage,
    VolumeUsageQuery,
)
from vessel.contracts.models import Payload
from vessel.kube.objects import StorageClassView

log = logging.getLogger("vessel.provisioner")


def _measure(backend: StorageBackend) -> tuple[int, int]:
    """(total, free) bytes; (0, 0) when the backend cannot be read now."""
    try:
        return backend_total(backend), backend.free_bytes()
    except (BackendError, OSError) as exc:
        log.warning("backend %s cannot be measured: %s", backend.name, exc)
        return 0, 0


async def backends(env: ProvisionerContext, query: BackendQuery) -> BackendList:
    infos = []
    for name in sorted(env.backends):
        if query.name and name != query.name:
            continue
        backend = env.backends[name]
        total, free = await asyncio.to_thread(_measure, backend)
        free = max(0, free - env.reserved_on(name))
        pools = []
        for pool in env.pools_of(name):
            allocated = env.allocated(pool)
            pool_total, pool_free = total, free
            if pool.capacity_bytes is not None:
                pool_total = min(total, pool.capacity_bytes) if total else pool.capacity_bytes
                pool_free = min(free, max(0, pool.capacity_bytes - allocated))
            pools.append(
                PoolInfo(
                    name=pool.name,
                    attributes=dict(pool.attributes),
                    labels=dict(pool.labels),
                    capacity_bytes=pool_total,
                    free_bytes=pool_free,
                    allocated_bytes=allocated,
                )
            )
        infos.append(
            BackendInfo(
                name=name,
                type=backend.type,
                path=str(getattr(backend, "root", "") or ""),
                capacity_bytes=total,
                free_bytes=free,
                volumes=sum(1 for r in env.volumes.all() if r.backend == name),
                pools=pools,
            )
        )
    return BackendList(cluster=env.cluster_id, backends=infos)


def storage_classes(env: ProvisionerContext) -> StorageClassList:
    found = []
    views = (StorageClassView(obj) for obj in env.classes.cache.values())
    for view in sorted(views, key=lambda v: v.name):
        found.append(
            StorageClassInfo(
                name=view.name,
                provisioner=view.provisioner,
                parameters=view.parameters,
                reclaim_policy=view.reclaim_policy,
                volume_binding_mode=view.binding_mode,
                allow_volume_expansion=view.allows_expansion,
                is_default=view.is_default,
                vessel=view.provisioner == PROVISIONER_NAME,
            )
        )
    return StorageClassList(cluster=env.cluster_id, storage_classes=found)


async def usage(env: ProvisionerContext, query: VolumeUsageQuery) -> VolumeUsage:
    used: dict[str, int] = {}
    for volume_id in query.volume_ids:
        record = env.volumes.get(volume_id)
        backend = env.backends.get(record.backend) if record else None
        if backend is None:
            continue
        size = await asyncio.to_thread(used_bytes, backend, volume_id)
        if size is not None:
            used[volume_id] = size
    return VolumeUsage(cluster=env.cluster_id, used_bytes=used)


async def answer(env: ProvisionerContext, subject: str, body: bytes) -> bytes:
    """The encoded reply to a request on one of this cluster's query subjects."""
    reply: Payload
    text = body.strip() or b"{}"
    verb = subject.rsplit(".", 1)[-1]
    try:
        if verb == "backends":
            reply = await backends(env, BackendQuery.model_validate_json(text))
        elif verb == "storageclasses":
            StorageClassQuery.model_validate_json(text)
            reply = storage_classes(env)
        elif verb == "volumes":
            reply = await usage(env, VolumeUsageQuery.model_validate_json(text))
        else:
            reply = QueryFailed(error=f"no query is served on {subject}")
    except ValidationError as exc:
        reply = QueryFailed.invalid(subject, exc)
    return reply.model_dump_json().encode()


def subject_for(cluster: str) -> str:
    """`vessel.query.provisioner.<cluster>.*`: every query `answer` serves for `cluster`."""
    prefix = queries.QUERY_PROVISIONER_BACKENDS.format(cluster=cluster).rsplit(".", 1)[0]
    return f"{prefix}.*"
