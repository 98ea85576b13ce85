"""The gRPC services: validate, check what must exist, publish commands, read state."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any, TypeAlias

import grpc

from services.gateway import authz, operations_api
from services.gateway.convert import app_message, operation_message
from services.gateway.errors import ApiError, guard, invalid, not_found
from services.gateway.remote_bucket import GatewayBuckets
from services.gateway.restore_options import is_plain, preflight, restore_options
from services.gateway.validation import APP_ID, IDENTIFIER, Checker
from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc
from vessel.bus.errors import KeyExistsError
from vessel.bus.nats_port import Bus, KeyValue
from vessel.config import VesselSettings
from vessel.contracts import subjects
from vessel.contracts.commands import CreateBackup, CreateRestore
from vessel.contracts.events import AppRecord
from vessel.contracts.models import Payload
from vessel.contracts.operations import Operation
from vessel.contracts.protection import AppSnapshotRecord, RestorePreflight
from vessel.objectstore.base import ObjectNotFound

Context: TypeAlias = grpc.aio.ServicerContext


class Gateway:
    """State the services share: settings, bus, and the KV buckets it reads or owns."""

    def __init__(
        self,
        settings: VesselSettings,
        bus: Bus,
        inventory: KeyValue,
        operations: KeyValue,
        requests: KeyValue,
        registry: KeyValue,
    ) -> None:
        self.settings, self.bus = settings, bus
        self.inventory, self.operations, self.requests = inventory, operations, requests
        self.buckets = GatewayBuckets(settings, bus, registry)

    async def operation(self, op_id: str) -> Operation | None:
        entry = await self.operations.get(op_id)
        if entry is not None:
            return Operation.model_validate_json(entry.value)
        submitted = await self.requests.get(f"op.{op_id}")
        if submitted is None:
            return None
        return Operation.model_validate_json(submitted.value)

    async def submit(self, op: Operation, request_id: str) -> tuple[Operation, bool]:
        """Record the request; (operation, False) when this request id was seen before (the
        caller must be allowed to see that earlier operation)."""
        if request_id:
            op = op.model_copy(update={"id": f"{op.kind}-{request_id}"})
        try:
            await self.requests.create(f"op.{op.id}", op.model_dump_json().encode())
        except KeyExistsError:
            existing = await self.operation(op.id)
            assert existing is not None
            authz.require_scope(authz.current(), authz.operation_targets(existing))
            return existing, False
        return op, True

    async def start(
        self,
        op: Operation,
        request_id: str,
        message: subjects.Message,
        command: Callable[[Operation], Payload],
    ) -> pb.Operation:
        """Submit `op` and send `command(op)` on `message`, unless this request id was seen
        before (then no command: the earlier operation is the answer)."""
        op, fresh = await self.submit(op, request_id)
        if fresh:
            await self.bus.publish(message, command(op))
        return operation_message(op)

    async def app(self, app_id: str) -> AppRecord:
        """The app, when it exists and is wholly in the caller's scope."""
        entry = await self.inventory.get(f"apps.{app_id}")
        if entry is None:
            raise not_found(f"app {app_id}")
        app = AppRecord.model_validate_json(entry.value)
        authz.require_scope(authz.current(), authz.app_targets(app))
        return app

    async def snapshot_of(self, app_id: str, snapshot_id: str) -> AppSnapshotRecord:
        """An app snapshot of this app (NOT_FOUND otherwise: another app's is not revealed)."""
        entry = await (await self.bus.kv("app_snapshots")).get(snapshot_id)
        record = None if entry is None else AppSnapshotRecord.model_validate_json(entry.value)
        if record is None or record.app_id != app_id:
            raise not_found(f"snapshot {snapshot_id} of app {app_id}")
        return record

    async def backup_source(self, bucket: str, backup_id: str) -> tuple[str, list[str]]:
        """Where the backup came from, by its catalog (`backup.json`): (cluster, namespaces)."""
        store = self.buckets.open(bucket)
        try:
            raw = await asyncio.to_thread(store.get_bytes, f"backups/{backup_id}/backup.json")
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
                f"backup {backup_id} in bucket {bucket} has an unreadable backup.json",
            ) from None


def new_id(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:12]}"


async def earlier(gw: Gateway, kind: str, request_id: str) -> Operation | None:
    """The operation a first call with this request id created (a retry answers with it)."""
    op = await gw.operation(f"{kind}-{request_id}") if request_id else None
    if op is not None:
        authz.require_scope(authz.current(), authz.operation_targets(op))
    return op


class AppService(rpc.AppServiceServicer):
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    @guard
    async def ListApps(self, request: pb.ListAppsRequest, context: Context) -> pb.ListAppsResponse:
        """Only the apps wholly inside the caller's scope."""
        principal = authz.current()
        apps = []
        for key in sorted(await self.gw.inventory.keys()):
            entry = await self.gw.inventory.get(key)
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
    async def GetApp(self, request: pb.GetAppRequest, context: Context) -> pb.App:
        if not APP_ID.match(request.id):
            raise invalid([("id", f"{request.id!r} is not an app id <cluster>.<namespace>.<name>")])
        return app_message(await self.gw.app(request.id))


class BackupService(rpc.BackupServiceServicer):
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    @guard
    async def CreateBackup(self, request: pb.CreateBackupRequest, context: Context) -> pb.Operation:
        check = Checker(self.gw.settings, await self.gw.buckets.names())
        check.pattern("app_id", request.app_id, APP_ID, "an app id <cluster>.<namespace>.<name>")
        check.bucket("bucket", request.bucket)
        check.pattern("request_id", request.request_id, IDENTIFIER, "an identifier", required=False)
        check.pattern(
            "snapshot_id", request.snapshot_id, IDENTIFIER, "a snapshot id", required=False
        )
        if check.violations:
            raise invalid(check.violations)
        await self.gw.app(request.app_id)
        if request.snapshot_id:
            await self.gw.snapshot_of(request.app_id, request.snapshot_id)
        op = Operation(
            id=new_id("backup"),
            kind="backup",
            app_id=request.app_id,
            bucket=request.bucket,
            snapshot_id=request.snapshot_id,
            requested_by=authz.current().name,
        )
        return await self.gw.start(
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


class RestoreService(rpc.RestoreServiceServicer):
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    @guard
    async def CreateRestore(
        self, request: pb.CreateRestoreRequest, context: Context
    ) -> pb.Operation:
        check = Checker(self.gw.settings, await self.gw.buckets.names())
        check.pattern("backup_id", request.backup_id, IDENTIFIER, "a backup id")
        check.bucket("bucket", request.bucket)
        check.cluster("target_cluster", request.target_cluster)
        check.mapping("namespace_mapping", dict(request.namespace_mapping))
        check.pattern("request_id", request.request_id, IDENTIFIER, "an identifier", required=False)
        options, problems = restore_options(request)
        check.violations += problems
        if check.violations:
            raise invalid(check.violations)
        cluster, namespaces = await self.gw.backup_source(request.bucket, request.backup_id)
        mapping = dict(request.namespace_mapping)
        principal = authz.current()  # reads the source, writes each (mapped) namespace
        if options.trust_unsealed:  # vouching for what anyone with bucket access could write
            authz.require_role(principal, authz.Role.ADMIN, "trust_unsealed")
        authz.require_scope(principal, [(cluster, ns) for ns in namespaces])
        authz.require_scope(
            principal, authz.restore_targets(request.target_cluster, mapping, namespaces)
        )
        if (first := await earlier(self.gw, "restore", request.request_id)) is not None:
            return operation_message(first)  # a retry: answered without a second preflight
        query = RestorePreflight(
            backup_id=request.backup_id,
            bucket=request.bucket,
            target_cluster=request.target_cluster,
            namespace_mapping=mapping,
            options=options,
        )
        await preflight(self.gw.bus, query, required=not is_plain(options))
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
        return await self.gw.start(
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


class OperationService(rpc.OperationServiceServicer):
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    async def _get(self, op_id: str) -> Operation:
        if not IDENTIFIER.match(op_id):
            raise invalid([("id", f"{op_id!r} is not an operation id")])
        op = await self.gw.operation(op_id)
        if op is None:
            raise not_found(f"operation {op_id}")
        authz.require_scope(authz.current(), authz.operation_targets(op))
        return op

    @guard
    async def GetOperation(self, request: pb.GetOperationRequest, context: Context) -> pb.Operation:
        return operation_message(await self._get(request.id))

    @guard
    async def WaitOperation(
        self, request: pb.WaitOperationRequest, context: Context
    ) -> pb.Operation:
        timeout = request.timeout_seconds or 60.0
        if not 0 < timeout <= 3600:
            raise invalid([("timeout_seconds", "must be in (0, 3600]")])
        deadline = asyncio.get_running_loop().time() + timeout
        op = await self._get(request.id)
        while not op.done and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.2)
            op = await self._get(request.id)
        return operation_message(op)

    @guard
    async def ListOperations(
        self, request: pb.ListOperationsRequest, context: Context
    ) -> pb.ListOperationsResponse:
        ops, token = await operations_api.list_operations(self.gw, request)
        return pb.ListOperationsResponse(
            operations=[operation_message(op) for op in ops], next_page_token=token
        )

    @guard
    async def CancelOperation(
        self, request: pb.CancelOperationRequest, context: Context
    ) -> pb.Operation:
        op = await self._get(request.id)
        return operation_message(await operations_api.cancel_operation(self.gw, op))
