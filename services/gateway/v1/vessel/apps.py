"""AppService: the apps discovery found (KV `inventory`), only those in the caller's scope;
unmanaging and managing them again (commands to discovery, which keeps the decision)."""

from __future__ import annotations

import uuid

from services.gateway.auth import authz
from services.gateway.context import GatewayContext
from services.gateway.errors import RpcContext, guard, invalid
from services.gateway.v1.vessel.convert import app_message
from services.gateway.validation import APP_ID
from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc
from vessel.contracts import subjects
from vessel.contracts.commands import DefineApp, UndefineApp
from vessel.contracts.events import AppRecord


def _parts(app_id: str) -> tuple[str, str, str]:
    if not APP_ID.match(app_id):
        raise invalid([("id", f"{app_id!r} is not an app id <cluster>.<namespace>.<name>")])
    cluster, namespace, name = app_id.split(".", 2)
    return cluster, namespace, name


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
        _parts(request.id)
        return app_message(await self.ctx.app(request.id))

    @guard
    async def UnmanageApp(
        self, request: pb.AppManagementRequest, context: RpcContext
    ) -> pb.AppManagement:
        cluster, namespace, name = _parts(request.id)
        app = await self.ctx.app(request.id)
        ref = {"operation_id": uuid.uuid4().hex, "cluster": cluster, "namespace": namespace}
        if app.grouping == "user":
            await self.ctx.bus.publish(subjects.UNDEFINE_APP, UndefineApp(**ref, name=name))
            said = "user-defined app undefined: its objects are grouped automatically again"
        else:
            unmanaged = DefineApp(**ref, name=name, unmanaged=True)
            await self.ctx.bus.publish(subjects.DEFINE_APP, unmanaged)
            said = "left out of the inventory until `vessel app manage`"
        return pb.AppManagement(id=request.id, managed=False, message=said)

    @guard
    async def ManageApp(
        self, request: pb.AppManagementRequest, context: RpcContext
    ) -> pb.AppManagement:
        """The app may be absent from the inventory (it is unmanaged): only its id is
        checked, against the caller's scope by the policy."""
        cluster, namespace, name = _parts(request.id)
        manage = UndefineApp(
            operation_id=uuid.uuid4().hex, cluster=cluster, namespace=namespace, name=name
        )
        await self.ctx.bus.publish(subjects.UNDEFINE_APP, manage)
        said = "discovery groups it again with the next change of its namespace"
        return pb.AppManagement(id=request.id, managed=True, message=said)
