"""SnapshotService: app snapshots, read from KV `app_snapshots` (written by protection);
creating and deleting send protection commands and return an Operation at once."""

from __future__ import annotations

from services.gateway.auth import authz
from services.gateway.context import GatewayContext
from services.gateway.errors import RpcContext, guard, invalid, not_found
from services.gateway.operations import new_id, operation_id, start
from services.gateway.reads.lazy_pages import load_page
from services.gateway.v1.protection.convert import snapshot_message
from services.gateway.v1.vessel.convert import operation_message
from services.gateway.validation import APP_ID, IDENTIFIER, Checker, require_ids
from vessel.api.v1 import protection_pb2 as ppb
from vessel.api.v1 import protection_pb2_grpc as prpc
from vessel.api.v1 import vessel_pb2 as pb
from vessel.contracts import subjects
from vessel.contracts.operations import Operation
from vessel.contracts.protection import AppSnapshotRecord, CreateAppSnapshot, DeleteAppSnapshot


class SnapshotService(prpc.SnapshotServiceServicer):
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    async def _record(self, snapshot_id: str) -> AppSnapshotRecord:
        require_ids(("id", snapshot_id, "a snapshot id", True))
        entry = await self.ctx.app_snapshots.get(snapshot_id)
        if entry is None:
            raise not_found(f"snapshot {snapshot_id}")
        record = AppSnapshotRecord.model_validate_json(entry.value)
        authz.require_scope(
            authz.current(), authz.snapshot_targets(record.cluster, record.namespace)
        )
        return record

    @guard
    async def CreateSnapshot(
        self, request: ppb.CreateSnapshotRequest, context: RpcContext
    ) -> pb.Operation:
        check = Checker(self.ctx.settings)
        check.pattern("app_id", request.app_id, APP_ID, "an app id <cluster>.<namespace>.<name>")
        check.pattern("bucket", request.bucket, IDENTIFIER, "a bucket name")
        check.pattern("request_id", request.request_id, IDENTIFIER, "an identifier", required=False)
        if check.violations:
            raise invalid(check.violations)
        await self.ctx.known_bucket("bucket", request.bucket)
        await self.ctx.app(request.app_id)
        op_id = operation_id("snapshot", request.request_id)
        op = Operation(
            id=op_id,
            kind="snapshot",
            app_id=request.app_id,
            bucket=request.bucket,
            snapshot_id=op_id,  # the snapshot is named after the operation taking it
            requested_by=authz.current().name,
        )
        started = await start(
            self.ctx,
            op,
            request.request_id,
            subjects.CREATE_SNAPSHOT,
            lambda op: CreateAppSnapshot(
                operation_id=op.id,
                app_id=op.app_id,
                bucket=op.bucket,
                requested_by=op.requested_by,
            ),
        )
        return operation_message(started)

    @guard
    async def ListSnapshots(
        self, request: ppb.ListSnapshotsRequest, context: RpcContext
    ) -> ppb.ListSnapshotsResponse:
        principal = authz.current()

        async def load(key: str) -> ppb.Snapshot | None:
            entry = await self.ctx.app_snapshots.get(key)
            if entry is None:
                return None
            r = AppSnapshotRecord.model_validate_json(entry.value)
            if request.app_id and r.app_id != request.app_id:
                return None
            if request.cluster and r.cluster != request.cluster:
                return None
            if request.namespace and r.namespace != request.namespace:
                return None
            if not authz.covers_all(principal, authz.snapshot_targets(r.cluster, r.namespace)):
                return None
            return snapshot_message(r)

        items, token = await load_page(
            await self.ctx.app_snapshots.keys(), load, request.page_size, request.page_token
        )
        return ppb.ListSnapshotsResponse(snapshots=items, next_page_token=token)

    @guard
    async def GetSnapshot(
        self, request: ppb.GetSnapshotRequest, context: RpcContext
    ) -> ppb.Snapshot:
        return snapshot_message(await self._record(request.id))

    @guard
    async def DeleteSnapshot(
        self, request: ppb.DeleteSnapshotRequest, context: RpcContext
    ) -> pb.Operation:
        require_ids(
            ("id", request.id, "a snapshot id", True),
            ("request_id", request.request_id, "an identifier", False),
        )
        record = await self._record(request.id)
        op = Operation(
            id=new_id("delete-snapshot"),
            kind="delete-snapshot",
            app_id=record.app_id,
            bucket=record.bucket,
            snapshot_id=record.id,
            requested_by=authz.current().name,
        )
        started = await start(
            self.ctx,
            op,
            request.request_id,
            subjects.DELETE_SNAPSHOT,
            lambda op: DeleteAppSnapshot(
                operation_id=op.id, snapshot_id=record.id, requested_by=op.requested_by
            ),
        )
        return operation_message(started)
