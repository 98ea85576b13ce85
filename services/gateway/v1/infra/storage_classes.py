"""StorageClassService: the StorageClasses of each cluster, as its provisioner serves them
(only a running provisioner knows them)."""

from __future__ import annotations

from services.gateway.context import GatewayContext
from services.gateway.errors import RpcContext, guard
from services.gateway.provisioners import ask
from services.gateway.reads import paging
from services.gateway.v1.infra.clusters import cluster_or_all
from services.gateway.v1.infra.convert import storage_class_message
from vessel.api.v1 import infra_pb2 as ipb
from vessel.api.v1 import infra_pb2_grpc as irpc
from vessel.contracts import queries
from vessel.contracts.infra_queries import StorageClassList, StorageClassQuery


class StorageClassService(irpc.StorageClassServiceServicer):
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    @guard
    async def ListStorageClasses(
        self, request: ipb.ListStorageClassesRequest, context: RpcContext
    ) -> ipb.ListStorageClassesResponse:
        size = paging.page_size(request.page_size)
        found = []
        for cluster in await cluster_or_all(self.ctx, request.cluster):
            reply = await ask(
                self.ctx.bus,
                cluster,
                queries.QUERY_PROVISIONER_STORAGECLASSES,
                StorageClassQuery(),
                StorageClassList,
            )
            found += [storage_class_message(cluster, c) for c in reply.storage_classes]
        page, token = paging.paginate(
            found, lambda c: f"{c.cluster}/{c.name}", size, request.page_token
        )
        return ipb.ListStorageClassesResponse(storage_classes=page, next_page_token=token)
