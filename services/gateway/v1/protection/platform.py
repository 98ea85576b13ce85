"""PlatformService: replay a bucket's platform export (schedules, hooks, app definitions,
registered buckets) on this install; admin only. The answer is the operation, at once."""

from __future__ import annotations

from services.gateway.auth import authz
from services.gateway.context import GatewayContext
from services.gateway.errors import RpcContext, guard, invalid
from services.gateway.operations import new_id, start
from services.gateway.v1.vessel.convert import operation_message
from services.gateway.validation import IDENTIFIER, Checker
from vessel.api.v1 import protection_pb2 as ppb
from vessel.api.v1 import protection_pb2_grpc as prpc
from vessel.api.v1 import vessel_pb2 as pb
from vessel.contracts import subjects
from vessel.contracts.operations import Operation
from vessel.contracts.platform import RecoverPlatform


class PlatformService(prpc.PlatformServiceServicer):
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    @guard
    async def RecoverPlatform(
        self, request: ppb.RecoverPlatformRequest, context: RpcContext
    ) -> pb.Operation:
        check = Checker(self.ctx.settings, await self.ctx.buckets.names())
        check.bucket("bucket", request.bucket)
        check.pattern("request_id", request.request_id, IDENTIFIER, "an identifier", required=False)
        check.pattern(
            "from_install", request.from_install, IDENTIFIER, "an install id", required=False
        )
        if check.violations:
            raise invalid(check.violations)
        op = Operation(
            id=new_id("recover-platform"),
            kind="recover-platform",
            bucket=request.bucket,
            requested_by=authz.current().name,
        )
        started = await start(
            self.ctx,
            op,
            request.request_id,
            subjects.RECOVER_PLATFORM,
            lambda o: RecoverPlatform(
                operation_id=o.id,
                bucket=o.bucket,
                from_install=request.from_install or None,
                requested_by=o.requested_by,
            ),
        )
        return operation_message(started)
