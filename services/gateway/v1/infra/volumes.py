"""VolumeService: the provisioners' volumes (KV `volumes`), with the used bytes only a
running provisioner knows; scoped callers see only the namespaces they cover."""

from __future__ import annotations

from services.gateway.auth import authz
from services.gateway.context import GatewayContext
from services.gateway.errors import RpcContext, guard, not_found
from services.gateway.provisioners import ask
from services.gateway.reads import paging
from services.gateway.reads.records import values_under
from services.gateway.v1.infra.clusters import cluster_or_all
from services.gateway.v1.infra.convert import volume_message
from services.gateway.validation import require_ref
from vessel.api.v1 import infra_pb2 as ipb
from vessel.api.v1 import infra_pb2_grpc as irpc
from vessel.contracts import queries
from vessel.contracts.infra_queries import StoredVolume, VolumeUsage, VolumeUsageQuery


class VolumeService(irpc.VolumeServiceServicer):
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    async def _used(self, cluster: str, volume_ids: list[str]) -> dict[str, int]:
        if not volume_ids:
            return {}
        reply = await ask(
            self.ctx.bus,
            cluster,
            queries.QUERY_PROVISIONER_VOLUMES,
            VolumeUsageQuery(volume_ids=volume_ids),
            VolumeUsage,
        )
        return reply.used_bytes

    @guard
    async def ListVolumes(
        self, request: ipb.ListVolumesRequest, context: RpcContext
    ) -> ipb.ListVolumesResponse:
        size = paging.page_size(request.page_size)
        clusters = await cluster_or_all(self.ctx, request.cluster)
        principal = authz.current()
        volumes = [
            v
            for v in (
                StoredVolume.model_validate_json(raw)
                for raw in await values_under(self.ctx.volumes, clusters)
            )
            if (not request.namespace or v.namespace == request.namespace)
            and (not request.backend or v.backend == request.backend)
            and (not request.state or v.state == request.state)
            and principal.covers(v.cluster, v.namespace)
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
    async def GetVolume(self, request: ipb.GetVolumeRequest, context: RpcContext) -> ipb.Volume:
        require_ref(request.cluster, request.id)
        entry = await self.ctx.volumes.get(f"{request.cluster}.{request.id}")
        if entry is None or not entry.value:
            raise not_found(f"volume {request.id} in cluster {request.cluster}")
        volume = StoredVolume.model_validate_json(entry.value)
        authz.require_scope(authz.current(), [(volume.cluster, volume.namespace)])
        used = await self._used(volume.cluster, [volume.volume_id])
        return volume_message(volume, used.get(volume.volume_id, 0))
