"""The infrastructure services: StorageClasses, volumes, volume snapshots and clusters
(backends: `backends_api`).

Reads come from the owners' KV buckets (`volumes`, `snapshots` from the provisioners,
`clusters` from discovery) or, for what only a running provisioner knows (free space,
StorageClasses, used bytes), from its per-cluster query. Changes are the owners'
commands; backend changes wait for the provisioner's verdict, so the caller learns at once
whether a backend was accepted. Scoped callers see only what their scope covers.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeAlias

import grpc
from pydantic import ValidationError

from services.gateway import authz, paging
from services.gateway.activity import ActivityLog
from services.gateway.errors import guard, invalid, not_found
from services.gateway.infra_convert import (
    cluster_message,
    snapshot_message,
    storage_class_message,
    volume_message,
)
from services.gateway.provisioners import ask
from services.gateway.servicers import Gateway
from services.gateway.validation import DNS_LABEL, IDENTIFIER, Checker
from vessel.api.v1 import infra_pb2 as ipb
from vessel.api.v1 import infra_pb2_grpc as irpc
from vessel.bus.errors import KeyExistsError
from vessel.bus.nats_port import KeyValue
from vessel.contracts import subjects
from vessel.contracts.commands import RegisterCluster, RemoveCluster
from vessel.contracts.events import ClusterRecord
from vessel.contracts.infra_queries import (
    BackendInfo,
    BackendList,
    BackendQuery,
    StorageClassList,
    StorageClassQuery,
    StoredSnapshot,
    StoredVolume,
    VolumeUsage,
    VolumeUsageQuery,
)

Context: TypeAlias = grpc.aio.ServicerContext


@dataclass
class Infra:
    gw: Gateway
    volumes: KeyValue
    snapshots: KeyValue
    clusters: KeyValue
    activity: ActivityLog
    query_timeout: float = 5.0
    apply_timeout: float = 15.0
    """How long a backend change waits for the provisioner's verdict."""

    async def known_clusters(self) -> list[str]:
        """Clusters of the settings and those discovery registered."""
        ids = {c.id for c in self.gw.settings.clusters}
        ids.update(await self.clusters.keys())
        return sorted(ids)

    async def cluster_or_all(self, cluster: str, field: str = "cluster") -> list[str]:
        """The cluster named (checked) or every known one the caller's scope covers."""
        principal = authz.current()
        known = await self.known_clusters()
        if cluster:
            if not DNS_LABEL.match(cluster):
                raise invalid([(field, f"{cluster!r} is not a cluster id (DNS label)")])
            if cluster not in known:
                raise not_found(f"cluster {cluster}")
            return [cluster]
        return [c for c in known if principal.covers(c, None)]

    async def backends(self, cluster: str, name: str = "") -> list[BackendInfo]:
        reply = await ask(
            self.gw.bus,
            cluster,
            subjects.QUERY_PROVISIONER_BACKENDS,
            BackendQuery(name=name),
            BackendList,
            self.query_timeout,
        )
        return reply.backends


async def _read_all(kv: KeyValue, prefixes: Iterable[str]) -> list[bytes]:
    wanted = tuple(f"{p}." for p in prefixes)
    values = []
    for key in await kv.keys():
        if not key.startswith(wanted):
            continue
        entry = await kv.get(key)
        if entry is not None and entry.value:
            values.append(entry.value)
    return values


def _in_scope(cluster: str, namespace: str) -> bool:
    return authz.current().covers(cluster, namespace)


class StorageClassService(irpc.StorageClassServiceServicer):
    def __init__(self, infra: Infra) -> None:
        self.infra = infra

    @guard
    async def ListStorageClasses(
        self, request: ipb.ListStorageClassesRequest, context: Context
    ) -> ipb.ListStorageClassesResponse:
        size = paging.page_size(request.page_size)
        found = []
        for cluster in await self.infra.cluster_or_all(request.cluster):
            reply = await ask(
                self.infra.gw.bus,
                cluster,
                subjects.QUERY_PROVISIONER_STORAGECLASSES,
                StorageClassQuery(),
                StorageClassList,
                self.infra.query_timeout,
            )
            found += [storage_class_message(cluster, c) for c in reply.storage_classes]
        page, token = paging.paginate(
            found, lambda c: f"{c.cluster}/{c.name}", size, request.page_token
        )
        return ipb.ListStorageClassesResponse(storage_classes=page, next_page_token=token)


class VolumeService(irpc.VolumeServiceServicer):
    def __init__(self, infra: Infra) -> None:
        self.infra = infra

    async def _used(self, cluster: str, volume_ids: list[str]) -> dict[str, int]:
        if not volume_ids:
            return {}
        reply = await ask(
            self.infra.gw.bus,
            cluster,
            subjects.QUERY_PROVISIONER_VOLUMES,
            VolumeUsageQuery(volume_ids=volume_ids),
            VolumeUsage,
            self.infra.query_timeout,
        )
        return reply.used_bytes

    @guard
    async def ListVolumes(
        self, request: ipb.ListVolumesRequest, context: Context
    ) -> ipb.ListVolumesResponse:
        size = paging.page_size(request.page_size)
        clusters = await self.infra.cluster_or_all(request.cluster)
        volumes = [
            v
            for v in (
                StoredVolume.model_validate_json(raw)
                for raw in await _read_all(self.infra.volumes, clusters)
            )
            if (not request.namespace or v.namespace == request.namespace)
            and (not request.backend or v.backend == request.backend)
            and (not request.state or v.state == request.state)
            and _in_scope(v.cluster, v.namespace)
        ]
        page, token = paging.paginate(
            volumes, lambda v: f"{v.cluster}/{v.volume_id}", size, request.page_token
        )
        used: dict[str, int] = {}
        for cluster in sorted({v.cluster for v in page}):
            ids = [v.volume_id for v in page if v.cluster == cluster]
            used.update({f"{cluster}/{k}": n for k, n in (await self._used(cluster, ids)).items()})
        return ipb.ListVolumesResponse(
            volumes=[volume_message(v, used.get(f"{v.cluster}/{v.volume_id}", 0)) for v in page],
            next_page_token=token,
        )

    @guard
    async def GetVolume(self, request: ipb.GetVolumeRequest, context: Context) -> ipb.Volume:
        check_ref(request.cluster, request.id)
        entry = await self.infra.volumes.get(f"{request.cluster}.{request.id}")
        if entry is None or not entry.value:
            raise not_found(f"volume {request.id} in cluster {request.cluster}")
        volume = StoredVolume.model_validate_json(entry.value)
        authz.require_scope(authz.current(), [(volume.cluster, volume.namespace)])
        used = await self._used(volume.cluster, [volume.volume_id])
        return volume_message(volume, used.get(volume.volume_id, 0))


def check_ref(cluster: str, record_id: str) -> None:
    violations = []
    if not DNS_LABEL.match(cluster):
        violations.append(("cluster", f"{cluster!r} is not a cluster id (DNS label)"))
    if not IDENTIFIER.match(record_id):
        violations.append(("id", f"{record_id!r} is not an id"))
    if violations:
        raise invalid(violations)


class VolumeSnapshotService(irpc.VolumeSnapshotServiceServicer):
    def __init__(self, infra: Infra) -> None:
        self.infra = infra

    async def _claims(self, clusters: Iterable[str]) -> dict[str, str]:
        raws = await _read_all(self.infra.volumes, clusters)
        vols = [StoredVolume.model_validate_json(r) for r in raws]
        return {f"{v.cluster}/{v.volume_id}": v.claim for v in vols}

    @guard
    async def ListVolumeSnapshots(
        self, request: ipb.ListVolumeSnapshotsRequest, context: Context
    ) -> ipb.ListVolumeSnapshotsResponse:
        size = paging.page_size(request.page_size)
        clusters = await self.infra.cluster_or_all(request.cluster)
        snapshots = [
            s
            for s in (
                StoredSnapshot.model_validate_json(raw)
                for raw in await _read_all(self.infra.snapshots, clusters)
            )
            if (not request.namespace or s.namespace == request.namespace)
            and (not request.volume_id or s.volume_id == request.volume_id)
            and _in_scope(s.cluster, s.namespace)
        ]
        page, token = paging.paginate(
            snapshots, lambda s: f"{s.cluster}/{s.snapshot_id}", size, request.page_token
        )
        claims = await self._claims({s.cluster for s in page})
        return ipb.ListVolumeSnapshotsResponse(
            volume_snapshots=[
                snapshot_message(s, claims.get(f"{s.cluster}/{s.volume_id}", "")) for s in page
            ],
            next_page_token=token,
        )

    @guard
    async def GetVolumeSnapshot(
        self, request: ipb.GetVolumeSnapshotRequest, context: Context
    ) -> ipb.VolumeSnapshot:
        check_ref(request.cluster, request.id)
        entry = await self.infra.snapshots.get(f"{request.cluster}.{request.id}")
        if entry is None or not entry.value:
            raise not_found(f"volume snapshot {request.id} in cluster {request.cluster}")
        snapshot = StoredSnapshot.model_validate_json(entry.value)
        authz.require_scope(authz.current(), [(snapshot.cluster, snapshot.namespace)])
        claims = await self._claims([snapshot.cluster])
        claim = claims.get(f"{snapshot.cluster}/{snapshot.volume_id}", "")
        return snapshot_message(snapshot, claim)


class ClusterService(irpc.ClusterServiceServicer):
    def __init__(self, infra: Infra) -> None:
        self.infra = infra

    async def _all(self) -> dict[str, ipb.Cluster]:
        found: dict[str, ipb.Cluster] = {}
        for key in await self.infra.clusters.keys():
            entry = await self.infra.clusters.get(key)
            if entry is not None and entry.value:
                record = ClusterRecord.model_validate_json(entry.value)
                found[record.id] = cluster_message(record)
        for configured in self.infra.gw.settings.clusters:
            if configured.id not in found:
                found[configured.id] = ipb.Cluster(
                    id=configured.id,
                    source="config",
                    state="Pending",
                    reason="discovery has not reported on this cluster yet",
                )
        return found

    @guard
    async def ListClusters(
        self, request: ipb.ListClustersRequest, context: Context
    ) -> ipb.ListClustersResponse:
        size = paging.page_size(request.page_size)
        principal = authz.current()
        clusters = [
            c
            for c in (await self._all()).values()
            if (not request.state or c.state == request.state) and principal.covers(c.id, None)
        ]
        page, token = paging.paginate(clusters, lambda c: c.id, size, request.page_token)
        return ipb.ListClustersResponse(clusters=page, next_page_token=token)

    @guard
    async def GetCluster(self, request: ipb.GetClusterRequest, context: Context) -> ipb.Cluster:
        if not DNS_LABEL.match(request.id):
            raise invalid([("id", f"{request.id!r} is not a cluster id (DNS label)")])
        found = (await self._all()).get(request.id)
        if found is None:
            raise not_found(f"cluster {request.id}")
        return found

    @guard
    async def RegisterCluster(
        self, request: ipb.RegisterClusterRequest, context: Context
    ) -> ipb.ClusterChange:
        check = Checker(self.infra.gw.settings)
        if not DNS_LABEL.match(request.id):
            check.add("id", f"{request.id!r} is not a cluster id (DNS label)")
        if bool(request.kubeconfig) == bool(request.kubeconfig_path):
            check.add("kubeconfig", "give exactly one of kubeconfig and kubeconfig_path")
        check.pattern("request_id", request.request_id, IDENTIFIER, "an identifier", required=False)
        if check.violations:
            raise invalid(check.violations)
        op_id = operation_id("cluster-register", request.request_id)
        try:
            command = RegisterCluster(
                operation_id=op_id,
                cluster=request.id,
                kubeconfig=request.kubeconfig or None,
                kubeconfig_path=request.kubeconfig_path or None,
            )
        except ValidationError as exc:
            raise invalid([("request", str(exc.errors()[0]["msg"]))]) from None
        if await first_time(self.infra.gw, op_id, f"register {request.id}"):
            await self.infra.gw.bus.publish(subjects.REGISTER_CLUSTER, command)
            await self.infra.activity.record(
                "cluster.register",
                f"cluster/{request.id}",
                "Accepted",
                cluster=request.id,
                operation_id=op_id,
            )
        return ipb.ClusterChange(operation_id=op_id, cluster=request.id, action="register")

    @guard
    async def RemoveCluster(
        self, request: ipb.RemoveClusterRequest, context: Context
    ) -> ipb.ClusterChange:
        check = Checker(self.infra.gw.settings)
        if not DNS_LABEL.match(request.id):
            check.add("id", f"{request.id!r} is not a cluster id (DNS label)")
        check.pattern("request_id", request.request_id, IDENTIFIER, "an identifier", required=False)
        if check.violations:
            raise invalid(check.violations)
        op_id = operation_id("cluster-remove", request.request_id)
        retry = await self.infra.gw.requests.get(f"admin.{op_id}") is not None
        if not retry and request.id not in await self.infra.clusters.keys():
            raise not_found(f"registered cluster {request.id}")
        if await first_time(self.infra.gw, op_id, f"remove {request.id}"):
            await self.infra.gw.bus.publish(
                subjects.REMOVE_CLUSTER, RemoveCluster(operation_id=op_id, cluster=request.id)
            )
            await self.infra.activity.record(
                "cluster.remove",
                f"cluster/{request.id}",
                "Accepted",
                cluster=request.id,
                operation_id=op_id,
            )
        return ipb.ClusterChange(operation_id=op_id, cluster=request.id, action="remove")


def operation_id(kind: str, request_id: str) -> str:
    """The command's operation id: derived from the request id, so a retry repeats it."""
    return f"{kind}-{request_id}" if request_id else f"{kind}-{uuid.uuid4().hex[:12]}"


async def first_time(gw: Gateway, op_id: str, what: str) -> bool:
    """True for the first request with this operation id (later ones are retries)."""
    try:
        await gw.requests.create(f"admin.{op_id}", what.encode())
    except KeyExistsError:
        return False
    return True
