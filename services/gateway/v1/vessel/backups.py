"""BackupService: a backup of an app (from its live state or an app snapshot) into a bucket,
as a command to protection; the answer is the operation, at once."""

from __future__ import annotations

from services.gateway.auth import authz
from services.gateway.context import GatewayContext
from services.gateway.errors import RpcContext, guard, invalid
from services.gateway.operations import new_id, start
from services.gateway.v1.vessel.convert import operation_message
from services.gateway.validation import APP_ID, IDENTIFIER, Checker
from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc
from vessel.contracts import subjects
from vessel.contracts.commands import CreateBackup
from vessel.contracts.operations import Operation


class BackupService(rpc.BackupServiceServicer):
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    @guard
    async def CreateBackup(
        self, request: pb.CreateBackupRequest, context: RpcContext
    ) -> pb.Operation:
        check = Checker(self.ctx.settings, await self.ctx.buckets.names())
        check.pattern("app_id", request.app_id, APP_ID, "an app id <cluster>.<namespace>.<name>")
        check.bucket("bucket", request.bucket)
        check.pattern("request_id", request.request_id, IDENTIFIER, "an identifier", required=False)
        check.pattern(
            "snapshot_id", request.snapshot_id, IDENTIFIER, "a snapshot id", required=False
        )
        if check.violations:
            raise invalid(check.violations)
        await self.ctx.app(request.app_id)
        if request.snapshot_id:
            await self.ctx.snapshot_of(request.app_id, request.snapshot_id)
        op = Operation(
            id=new_id("backup"),
            kind="backup",
            app_id=request.app_id,
            bucket=request.bucket,
            snapshot_id=request.snapshot_id,
            requested_by=authz.current().name,
        )
        started = await start(
            self.ctx,
            op,
            request.request_id,
            subjects.CREATE_BACKUP,
            lambda op: CreateBackup(
                operation_id=op.id,
                app_id=op.app_id,
                bucket=op.bucket,
                snapshot_id=op.snapshot_id or None,
                requested_by=op.requested_by,
            ),
        )
        return operation_message(started)
