"""The provisioner's per-cluster queries (`vessel.query.provisioner.<cluster>.*`), answered
over core NATS from what it serves now: backends with pools, capacity and free space; the
cluster's StorageClasses from its informer; the space its volumes use.

The gateway asks these instead of reading backends or Kubernetes itself. A bad request is
answered `QueryFailed` naming the problem; a backend that cannot be measured right now
reports 0 free rather than failing the whole answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from pydantic import ValidationError

from services.provisioner.backends.base import BackendError, StorageBackend
from services.provisioner.capacity import backend_total
from services.provisioner.env import Env
from vessel.bus.nats_port import Bus
from vessel.config import PROVISIONER_NAME
from vessel.contracts import subjects
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

log = logging.getLogger("vessel.provisioner")
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"


def _measure(backend: StorageBackend) -> tuple[int, int]:
    """(total, free) bytes; (0, 0) when the backend cannot be read now."""
    try:
        return backend_total(backend), backend.free_bytes()
    except (BackendError, OSError) as exc:
        log.warning("backend %s cannot be measured: %s", backend.name, exc)
        return 0, 0


async def backends(env: Env, query: BackendQuery) -> BackendList:
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


def storage_classes(env: Env) -> StorageClassList:
    found = []
    for obj in sorted(env.classes.cache.values(), key=lambda o: str(o["metadata"]["name"])):
        annotations = obj["metadata"].get("annotations") or {}
        found.append(
            StorageClassInfo(
                name=obj["metadata"]["name"],
                provisioner=str(obj.get("provisioner", "")),
                parameters={str(k): str(v) for k, v in (obj.get("parameters") or {}).items()},
                reclaim_policy=str(obj.get("reclaimPolicy") or "Delete"),
                volume_binding_mode=str(obj.get("volumeBindingMode") or "Immediate"),
                allow_volume_expansion=obj.get("allowVolumeExpansion") is True,
                is_default=annotations.get(DEFAULT_CLASS) == "true",
                vessel=obj.get("provisioner") == PROVISIONER_NAME,
            )
        )
    return StorageClassList(cluster=env.cluster_id, storage_classes=found)


def _used(backend: StorageBackend, volume_id: str) -> int | None:
    try:
        return backend.usage(volume_id).used_bytes
    except BackendError:
        return None  # not (or no longer) on the backend


async def usage(env: Env, query: VolumeUsageQuery) -> VolumeUsage:
    used: dict[str, int] = {}
    for volume_id in query.volume_ids:
        record = env.volumes.get(volume_id)
        backend = env.backends.get(record.backend) if record else None
        if backend is None:
            continue
        size = await asyncio.to_thread(_used, backend, volume_id)
        if size is not None:
            used[volume_id] = size
    return VolumeUsage(cluster=env.cluster_id, used_bytes=used)


async def answer(env: Env, subject: str, body: bytes) -> bytes:
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
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'request'}: {e['msg']}" for e in exc.errors()
        )
        reply = QueryFailed(error=f"invalid request on {subject}: {problems}")
    return reply.model_dump_json().encode()


async def serve_queries(env: Env, bus: Bus, ready: asyncio.Event) -> None:
    """Answer this cluster's queries once the provisioner's caches are filled."""
    await ready.wait()
    prefix = subjects.QUERY_PROVISIONER_BACKENDS.format(cluster=env.cluster_id).rsplit(".", 1)[0]

    async def handler(subject: str, body: bytes) -> bytes:
        return await answer(env, subject, body)

    task = await bus.serve(f"{prefix}.*", handler, queue=f"provisioner-{env.cluster_id}")
    try:
        await asyncio.shield(task)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
