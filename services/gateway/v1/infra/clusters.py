"""ClusterService: the clusters of the settings and those discovery registered (KV
`clusters`), registering or removing one through discovery's commands, and join tokens
from the hub's discovery; and the choice
of clusters every infrastructure list makes (`cluster_or_all`).
"""

from __future__ import annotations

import grpc
from pydantic import ValidationError

from services.gateway.auth import authz
from services.gateway.context import GatewayContext
from services.gateway.errors import ApiError, RpcContext, guard, invalid, not_found, unavailable
from services.gateway.operations import first_time, operation_id
from services.gateway.reads import paging
from services.gateway.v1.infra.convert import cluster_message
from services.gateway.validation import DNS_LABEL, IDENTIFIER, Checker
from vessel.api.v1 import infra_pb2 as ipb
from vessel.api.v1 import infra_pb2_grpc as irpc
from vessel.bus.errors import BusError
from vessel.contracts import queries, subjects
from vessel.contracts.commands import RegisterCluster, RemoveCluster
from vessel.contracts.events import ClusterRecord, JoinToken, JoinTokenRequest, QueryFailed


async def cluster_or_all(ctx: GatewayContext, cluster: str, field: str = "cluster") -> list[str]:
    """The cluster named (checked) or every known one the caller's scope covers."""
    principal = authz.current()
    known = await ctx.cluster_ids()
    if cluster:
        if not DNS_LABEL.match(cluster):
            raise invalid([(field, f"{cluster!r} is not a cluster id (DNS label)")])
        if cluster not in known:
            raise not_found(f"cluster {cluster}")
        return [cluster]
    return [c for c in known if principal.covers(c, None)]


class ClusterService(irpc.ClusterServiceServicer):
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    async def _all(self) -> dict[str, ipb.Cluster]:
        found: dict[str, ipb.Cluster] = {}
        for key in await self.ctx.clusters.keys():
            entry = await self.ctx.clusters.get(key)
            if entry is not None and entry.value:
                record = ClusterRecord.model_validate_json(entry.value)
                found[record.id] = cluster_message(record)
        for configured in self.ctx.settings.clusters:
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
        self, request: ipb.ListClustersRequest, context: RpcContext
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
    async def GetCluster(self, request: ipb.GetClusterRequest, context: RpcContext) -> ipb.Cluster:
        if not DNS_LABEL.match(request.id):
            raise invalid([("id", f"{request.id!r} is not a cluster id (DNS label)")])
        found = (await self._all()).get(request.id)
        if found is None:
            raise not_found(f"cluster {request.id}")
        return found

    @guard
    async def RegisterCluster(
        self, request: ipb.RegisterClusterRequest, context: RpcContext
    ) -> ipb.ClusterChange:
        check = Checker(self.ctx.settings)
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
        if await first_time(self.ctx, op_id, f"register {request.id}"):
            await self.ctx.bus.publish(subjects.REGISTER_CLUSTER, command)
            await self._accepted("cluster.register", request.id, op_id)
        return ipb.ClusterChange(operation_id=op_id, cluster=request.id, action="register")

    @guard
    async def RemoveCluster(
        self, request: ipb.RemoveClusterRequest, context: RpcContext
    ) -> ipb.ClusterChange:
        check = Checker(self.ctx.settings)
        if not DNS_LABEL.match(request.id):
            check.add("id", f"{request.id!r} is not a cluster id (DNS label)")
        check.pattern("request_id", request.request_id, IDENTIFIER, "an identifier", required=False)
        if check.violations:
            raise invalid(check.violations)
        op_id = operation_id("cluster-remove", request.request_id)
        retry = await self.ctx.requests.remembered("admin", op_id) is not None
        if not retry and request.id not in await self.ctx.clusters.keys():
            raise not_found(f"registered cluster {request.id}")
        if await first_time(self.ctx, op_id, f"remove {request.id}"):
            await self.ctx.bus.publish(
                subjects.REMOVE_CLUSTER, RemoveCluster(operation_id=op_id, cluster=request.id)
            )
            await self._accepted("cluster.remove", request.id, op_id)
        return ipb.ClusterChange(operation_id=op_id, cluster=request.id, action="remove")

    @guard
    async def CreateJoinToken(
        self, request: ipb.CreateJoinTokenRequest, context: RpcContext
    ) -> ipb.JoinToken:
        try:
            asked = JoinTokenRequest(cluster=request.id, ttl_seconds=request.ttl_seconds or 3600)
        except ValidationError as exc:
            field = str(exc.errors()[0]["loc"][0]).replace("cluster", "id")
            raise invalid([(field, str(exc.errors()[0]["msg"]))]) from None
        try:
            body = await self.ctx.bus.request(
                queries.QUERY_JOIN_TOKEN, asked.model_dump_json().encode(), wait=10
            )
        except (BusError, TimeoutError):
            raise unavailable("the hub's discovery does not answer") from None
        try:
            token = JoinToken.model_validate_json(body)
        except ValidationError:
            error = QueryFailed.model_validate_json(body).error
            raise ApiError(grpc.StatusCode.FAILED_PRECONDITION, error) from None
        await self.ctx.activity.record(
            "cluster.join-token",
            f"cluster/{token.cluster}",
            "Issued",
            identity=authz.current().name,
            cluster=token.cluster,
        )
        message = ipb.JoinToken(cluster=token.cluster, token=token.token)
        message.expires_at.FromDatetime(token.expires_at)
        return message

    async def _accepted(self, action: str, cluster: str, op_id: str) -> None:
        """The activity record of a cluster command sent (its outcome is discovery's)."""
        await self.ctx.activity.record(
            action,
            f"cluster/{cluster}",
            "Accepted",
            identity=authz.current().name,
            cluster=cluster,
            operation_id=op_id,
        )
