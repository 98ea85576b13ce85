"""Conversions between the infrastructure contract models and the messages of infra.proto."""

from __future__ import annotations

from datetime import UTC, datetime

from vessel.api.v1 import infra_pb2 as ipb
from vessel.contracts.events import ClusterRecord
from vessel.contracts.infra_queries import (
    BackendInfo,
    StorageClassInfo,
    StoredSnapshot,
    StoredVolume,
)


def backend_message(cluster: str, b: BackendInfo) -> ipb.Backend:
    return ipb.Backend(
        cluster=cluster,
        name=b.name,
        type=b.type,
        path=b.path,
        capacity_bytes=b.capacity_bytes,
        free_bytes=b.free_bytes,
        volumes=b.volumes,
        pools=[
            ipb.Pool(
                name=p.name,
                attributes=p.attributes,
                labels=p.labels,
                capacity_bytes=p.capacity_bytes,
                free_bytes=p.free_bytes,
                allocated_bytes=p.allocated_bytes,
            )
            for p in b.pools
        ],
    )


def storage_class_message(cluster: str, c: StorageClassInfo) -> ipb.StorageClass:
    return ipb.StorageClass(
        cluster=cluster,
        name=c.name,
        provisioner=c.provisioner,
        parameters=c.parameters,
        reclaim_policy=c.reclaim_policy,
        volume_binding_mode=c.volume_binding_mode,
        allow_volume_expansion=c.allow_volume_expansion,
        is_default=c.is_default,
        vessel=c.vessel,
    )


def volume_message(v: StoredVolume, used: int) -> ipb.Volume:
    return ipb.Volume(
        cluster=v.cluster,
        id=v.volume_id,
        namespace=v.namespace,
        claim=v.claim,
        backend=v.backend,
        pool=v.pool,
        storage_class=v.storage_class,
        size_bytes=v.size_bytes,
        used_bytes=used,
        state=v.state,
        reclaim_policy=v.reclaim_policy,
        origin=v.origin,
        source=v.source,
    )


def snapshot_message(s: StoredSnapshot, claim: str) -> ipb.VolumeSnapshot:
    message = ipb.VolumeSnapshot(
        cluster=s.cluster,
        id=s.snapshot_id,
        namespace=s.namespace,
        name=s.name,
        volume_id=s.volume_id,
        claim=claim,
        backend=s.backend,
        size_bytes=s.size_bytes,
        state=s.state,
        deletion_policy=s.deletion_policy,
    )
    if s.created_at:
        message.created.FromDatetime(datetime.fromtimestamp(s.created_at, UTC))
    return message


def cluster_message(c: ClusterRecord, now: datetime | None = None) -> ipb.Cluster:
    """`c` as the API shows it: Away (with why) once its agent missed its heartbeats."""
    away = c.away(now or datetime.now(UTC))
    message = ipb.Cluster(
        id=c.id,
        server=c.server,
        source=c.source,
        state="Away" if away else c.state,
        reason=c.away_reason() if away else c.reason,
        agent_version=c.agent_version,
        conditions=[
            ipb.ClusterCondition(reason=x.reason, message=x.message, kinds=x.kinds)
            for x in c.conditions
        ],
    )
    message.registered.FromDatetime(c.registered)
    if c.last_contact is not None:
        message.last_contact.FromDatetime(c.last_contact)
    if c.heartbeat is not None:
        message.heartbeat.FromDatetime(c.heartbeat)
    return message
