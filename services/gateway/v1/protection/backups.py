"""BackupCatalogService: the backups a bucket holds, read from its catalog objects (so every
backup a bucket holds is listed, whoever wrote it); deleting sends a protection command and
returns an Operation at once."""

from __future__ import annotations

import asyncio

from pydantic import ValidationError

from services.gateway.auth import authz
from services.gateway.context import GatewayContext
from services.gateway.errors import RpcContext, guard, not_found
from services.gateway.operations import new_id, start
from services.gateway.reads.catalog_reader import CatalogEntry, backup_ids, read_entry
from services.gateway.reads.lazy_pages import load_page
from services.gateway.v1.protection.convert import backup_message
from services.gateway.v1.vessel.convert import operation_message
from services.gateway.validation import require_ids
from vessel.api.v1 import protection_pb2 as ppb
from vessel.api.v1 import protection_pb2_grpc as prpc
from vessel.api.v1 import vessel_pb2 as pb
from vessel.contracts import subjects
from vessel.contracts.operations import Operation
from vessel.contracts.protection import DeleteBackup as DeleteBackupCommand
from vessel.contracts.verification import VerificationRecord


class BackupCatalogService(prpc.BackupCatalogServiceServicer):
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    async def _entry(self, bucket: str, backup_id: str) -> CatalogEntry:
        require_ids(
            ("bucket", bucket, "a bucket name", True), ("id", backup_id, "a backup id", True)
        )
        await self.ctx.known_bucket("bucket", bucket)
        store = self.ctx.buckets.open(bucket)
        entry = await asyncio.to_thread(read_entry, store, backup_id)
        if entry is None:
            raise not_found(f"backup {backup_id} in bucket {bucket}")
        authz.require_scope(authz.current(), authz.backup_targets(entry.cluster, entry.namespaces))
        return entry

    async def _verified(self, bucket: str, entry: CatalogEntry) -> VerificationRecord | None:
        found = await self.ctx.verifications.get(f"{bucket}.{entry.backup_id}")
        if found is None:
            return None
        try:
            return VerificationRecord.model_validate_json(found.value)
        except ValidationError:
            return None  # written by a newer protection: shown as never verified

    @guard
    async def ListBackups(
        self, request: ppb.ListBackupsRequest, context: RpcContext
    ) -> ppb.ListBackupsResponse:
        await self.ctx.known_bucket("bucket", request.bucket)
        principal = authz.current()
        store = self.ctx.buckets.open(request.bucket)
        filtered = bool(request.app_id or request.cluster or request.namespace)

        async def load(backup_id: str) -> ppb.Backup | None:
            entry = await asyncio.to_thread(read_entry, store, backup_id)
            if entry is None:
                return None
            if entry.view is None:  # unreadable: matches no filter; only unscoped see it
                keep = not filtered and not principal.scoped
                return backup_message(request.bucket, entry) if keep else None
            view = entry.view
            if request.app_id and view.app_id != request.app_id:
                return None
            if request.cluster and view.cluster != request.cluster:
                return None
            if request.namespace and request.namespace not in entry.namespaces:
                return None
            targets = authz.backup_targets(view.cluster, entry.namespaces)
            if not authz.covers_all(principal, targets):
                return None
            verified = await self._verified(request.bucket, entry)
            return backup_message(request.bucket, entry, verified)

        ids = await asyncio.to_thread(backup_ids, store)
        items, token = await load_page(ids, load, request.page_size, request.page_token)
        return ppb.ListBackupsResponse(backups=items, next_page_token=token)

    @guard
    async def GetBackup(self, request: ppb.GetBackupRequest, context: RpcContext) -> ppb.Backup:
        entry = await self._entry(request.bucket, request.id)
        return backup_message(request.bucket, entry, await self._verified(request.bucket, entry))

    @guard
    async def DeleteBackup(
        self, request: ppb.DeleteBackupRequest, context: RpcContext
    ) -> pb.Operation:
        require_ids(("request_id", request.request_id, "an identifier", False))
        entry = await self._entry(request.bucket, request.id)
        op = Operation(
            id=new_id("delete-backup"),
            kind="delete-backup",
            app_id=entry.view.app_id if entry.view else "",
            backup_id=entry.backup_id,
            bucket=request.bucket,
            source_cluster=entry.cluster,
            requested_by=authz.current().name,
        )
        started = await start(
            self.ctx,
            op,
            request.request_id,
            subjects.DELETE_BACKUP,
            lambda op: DeleteBackupCommand(
                operation_id=op.id,
                backup_id=op.backup_id,
                bucket=op.bucket,
                requested_by=op.requested_by,
            ),
        )
        return operation_message(started)
