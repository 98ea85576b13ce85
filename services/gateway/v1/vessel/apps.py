"""AppService: the apps discovery found (KV `inventory`), only those in the caller's scope."""

from __future__ import annotations

from services.gateway.auth import authz
from services.gateway.context import GatewayContext
from services.gateway.errors import RpcContext, guard, invalid
from services.gateway.v1.vessel.convert import app_message
from services.gateway.validation import APP_ID
from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc
from vessel.contracts.events import AppRecord


class AppService(rpc.AppServiceServicer):
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    @guard
    async def ListApps(
        self, request: pb.ListAppsRequest, context: RpcContext
    ) -> pb.ListAppsResponse:
        """Only the apps wholly inside the caller's scope."""
        principal = authz.current()
        apps = []
        for key in sorted(await self.ctx.inventory.keys()):
            entry = await self.ctx.inventory.get(key)
            if entry is None:
                continue
            app = AppRecord.model_validate_json(entry.value)
            if request.cluster and app.cluster != request.cluster:
                continue
            if request.namespace and app.namespace != request.namespace:
                continue
            if not all(principal.covers(c, ns) for c, ns in authz.app_targets(app)):
                continue
            apps.append(app_message(app))
        return pb.ListAppsResponse(apps=apps)

    @guard
    async def GetApp(self, request: pb.GetAppRequest, context: RpcContext) -> pb.App:
        if not APP_ID.match(request.id):
            raise invalid([("id", f"{request.id!r} is not an app id <cluster>.<namespace>.<name>")])
        return app_message(await self.ctx.app(request.id))
