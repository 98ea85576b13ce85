"""VerificationService: start a restore verification of an app's backup; the answer is the
operation, at once. Role member and the app's scope (the policy); a copy sent to another
cluster than the app's also needs that cluster in scope, as it writes namespaces there."""

from __future__ import annotations

from services.gateway.auth import authz
from services.gateway.context import GatewayContext
from services.gateway.errors import RpcContext, guard, invalid
from services.gateway.operations import new_id, start
from services.gateway.v1.vessel.convert import operation_message
from services.gateway.validation import APP_ID, IDENTIFIER, Checker
from vessel.api.v1 import protection_pb2 as ppb
from vessel.api.v1 import protection_pb2_grpc as prpc
from vessel.api.v1 import vessel_pb2 as pb
from vessel.contracts import subjects
from vessel.contracts.operations import Operation
from vessel.contracts.verification import CreateVerification


class VerificationService(prpc.VerificationServiceServicer):
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    @guard
    async def CreateVerification(
        self, request: ppb.CreateVerificationRequest, context: RpcContext
    ) -> pb.Operation:
        check = Checker(
            self.ctx.settings, await self.ctx.buckets.names(), await self.ctx.cluster_ids()
        )
        check.pattern("app_id", request.app_id, APP_ID, "an app id <cluster>.<namespace>.<name>")
        check.bucket("bucket", request.bucket)
        check.pattern("backup_id", request.backup_id, IDENTIFIER, "a backup id", required=False)
        if request.target_cluster:
            check.cluster("target_cluster", request.target_cluster)
        check.pattern("request_id", request.request_id, IDENTIFIER, "an identifier", required=False)
        if check.violations:
            raise invalid(check.violations)
        app_cluster = request.app_id.split(".", 1)[0]
        if request.target_cluster and request.target_cluster != app_cluster:
            authz.require_scope(authz.current(), [(request.target_cluster, None)])
        op = Operation(
            id=new_id("verify"),
            kind="verify",
            app_id=request.app_id,
            bucket=request.bucket,
            backup_id=request.backup_id,
            target_cluster=request.target_cluster,
            requested_by=authz.current().name,
        )
        started = await start(
            self.ctx,
            op,
            request.request_id,
            subjects.CREATE_VERIFICATION,
            lambda o: CreateVerification(
                operation_id=o.id,
                app_id=o.app_id,
                bucket=o.bucket,
                backup_id=o.backup_id or None,
                target_cluster=o.target_cluster or None,
                requested_by=o.requested_by,
            ),
        )
        return operation_message(started)
