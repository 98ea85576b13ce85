"""RestoreService: a restore of a backup into a cluster, scoped by where the backup came
from (its listing entry) and where it writes, checked by protection's preflight, then sent
as a command; the answer is the operation, at once."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc

from services.gateway.auth import authz
from services.gateway.context import GatewayContext
from services.gateway.errors import ApiError, RpcContext, guard, invalid, not_found
from services.gateway.operations import earlier, new_id, start
from services.gateway.v1.vessel.convert import operation_message
from services.gateway.v1.vessel.restore_options import is_plain, preflight, restore_options
from services.gateway.validation import IDENTIFIER, Checker
from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc
from vessel.contracts import state, subjects
from vessel.contracts.commands import CreateRestore
from vessel.contracts.operations import Operation
from vessel.contracts.protection import RestorePreflight
from vessel.objectstore.base import ObjectNotFound


async def backup_source(ctx: GatewayContext, bucket: str, backup_id: str) -> tuple[str, list[str]]:
    """Where the backup came from, by its listing entry: (cluster, namespaces)."""
    store = ctx.buckets.open(bucket)
    key = state.backup_key(backup_id, state.BACKUP_LISTING)
    try:
        raw = await asyncio.to_thread(store.get_bytes, key)
    except ObjectNotFound:
        raise not_found(f"backup {backup_id} in bucket {bucket}") from None
    try:
        doc: dict[str, Any] = json.loads(raw)
        extra = doc.get("namespaces") or []  # a backup of an app spanning namespaces
        namespaces = [str(doc["namespace"]), *(str(n) for n in extra)]
        return str(doc["cluster"]), list(dict.fromkeys(namespaces))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ApiError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"backup {backup_id} in bucket {bucket} has an unreadable {state.BACKUP_LISTING}",
        ) from None


class RestoreService(rpc.RestoreServiceServicer):
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    @guard
    async def CreateRestore(
        self, request: pb.CreateRestoreRequest, context: RpcContext
    ) -> pb.Operation:
        check = Checker(
            self.ctx.settings, await self.ctx.buckets.names(), await self.ctx.cluster_ids()
        )
        check.pattern("backup_id", request.backup_id, IDENTIFIER, "a backup id")
        check.bucket("bucket", request.bucket)
        check.cluster("target_cluster", request.target_cluster)
        check.mapping("namespace_mapping", dict(request.namespace_mapping))
        check.pattern("request_id", request.request_id, IDENTIFIER, "an identifier", required=False)
        options, problems = restore_options(request)
        check.violations += problems
        if check.violations:
            raise invalid(check.violations)
        cluster, namespaces = await backup_source(self.ctx, request.bucket, request.backup_id)
        mapping = dict(request.namespace_mapping)
        principal = authz.current()  # reads the source, writes each (mapped) namespace
        if options.trust_unsealed:  # vouching for what anyone with bucket access could write
            authz.require_role(principal, authz.Role.ADMIN, "trust_unsealed")
        authz.require_scope(principal, [(cluster, ns) for ns in namespaces])
        authz.require_scope(
            principal, authz.restore_targets(request.target_cluster, mapping, namespaces)
        )
        if (first := await earlier(self.ctx, "restore", request.request_id)) is not None:
            return operation_message(first)  # a retry: answered without a second preflight
        query = RestorePreflight(
            backup_id=request.backup_id,
            bucket=request.bucket,
            target_cluster=request.target_cluster,
            namespace_mapping=mapping,
            options=options,
        )
        await preflight(self.ctx.bus, query, required=not is_plain(options))
        op = Operation(
            id=new_id("restore"),
            kind="restore",
            backup_id=request.backup_id,
            bucket=request.bucket,
            target_cluster=request.target_cluster,
            namespace_mapping=mapping,
            restore_options=options,
            requested_by=principal.name,
        )
        started = await start(
            self.ctx,
            op,
            request.request_id,
            subjects.CREATE_RESTORE,
            lambda op: CreateRestore(
                operation_id=op.id,
                backup_id=op.backup_id,
                bucket=op.bucket,
                target_cluster=op.target_cluster,
                namespace_mapping=op.namespace_mapping,
                options=options,
                requested_by=op.requested_by,
            ),
        )
        return operation_message(started)
