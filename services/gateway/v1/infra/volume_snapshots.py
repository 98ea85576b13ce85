"""VolumeSnapshotService: the provisioners' backend snapshots (KV `snapshots`), each named
with the claim of its volume; scoped callers see only the namespaces they cover."""

from __future__ import annotations

from collections.abc import Iterable

from services.gateway.auth import authz
from services.gateway.context import GatewayContext
from services.gateway.errors import RpcContext, guard, not_found
from services.gateway.reads import paging
from services.gateway.reads.records import values_under
from services.gateway.v1.infra.clusters import cluster_or_all
from services.gateway.v1.infra.convert import snapshot_message
from services.gateway.validation import require_ref
from vessel.api.v1 import infra_pb2 as ipb
from vessel.api.v1 import infra_pb2_grpc as irpc
from vessel.contracts.infra_queries import StoredSnapshot, StoredVolume


class VolumeSnapshotService(irpc.VolumeSnapshotServiceServicer):
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    async def _claims(self, clusters: Iterable[str]) -> dict[str, str]:
        raws = await values_under(self.ctx.volumes, clusters)
        vols = [StoredVolume.model_validate_json(r) for r in raws]
        return {f"{v.cluster}/{v.volume_id}": v.claim for v in vols}

    @guard
    async def ListVolumeSnapshots(
        self, request: ipb.ListVolumeSnapshotsRequest, context: RpcContext
    ) -> ipb.ListVolumeSnapshotsResponse:
        size = paging.page_size(request.page_size)
        clusters = await cluster_or_all(self.ctx, request.cluster)
        principal = authz.current()
        snapshots = [
            s
            for s in (
                StoredSnapshot.model_validate_json(raw)
                for raw in await values_under(self.ctx.snapshots, clusters)
            )
            if (not request.namespace or s.namespace == request.namespace)
            and (not request.volume_id or s.volume_id == request.volume_id)
            and principal.covers(s.cluster, s.namespace)
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
        self, request: ipb.GetVolumeSnapshotRequest, context: RpcContext
    ) -> ipb.VolumeSnapshot:
        require_ref(request.cluster, request.id)
        entry = await self.ctx.snapshots.get(f"{request.cluster}.{request.id}")
        if entry is None or not entry.value:
            raise not_found(f"volume snapshot {request.id} in cluster {request.cluster}")
        snapshot = StoredSnapshot.model_validate_json(entry.value)
        authz.require_scope(authz.current(), [(snapshot.cluster, snapshot.namespace)])
        claims = await self._claims([snapshot.cluster])
        claim = claims.get(f"{snapshot.cluster}/{snapshot.volume_id}", "")
        return snapshot_message(snapshot, claim)
