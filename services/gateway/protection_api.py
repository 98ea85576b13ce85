"""App snapshots and the backup catalog of a bucket, over gRPC.

Snapshot records are read from KV `app_snapshots` (written by protection); backups are
read from the bucket's catalog objects, so every backup a bucket holds is listed, whoever
wrote it. Creating and deleting send protection commands and return an Operation at once.
"""

from __future__ import annotations

import asyncio

from services.gateway import authz
from services.gateway.catalog_reader import CatalogEntry, backup_ids, read_entry
from services.gateway.errors import guard, invalid, not_found
from services.gateway.lazy_pages import load_page
from services.gateway.protection_convert import backup_message, snapshot_message
from services.gateway.servicers import Context, Gateway, new_id
from services.gateway.validation import APP_ID, IDENTIFIER, Checker
from vessel.api.v1 import protection_pb2 as ppb
from vessel.api.v1 import protection_pb2_grpc as prpc
from vessel.api.v1 import vessel_pb2 as pb
from vessel.bus.nats_port import KeyValue
from vessel.contracts import subjects
from vessel.contracts.operations import Operation
from vessel.contracts.protection import AppSnapshotRecord, CreateAppSnapshot, DeleteAppSnapshot
from vessel.contracts.protection import DeleteBackup as DeleteBackupCommand

SNAPSHOTS_KV = "app_snapshots"


Check = tuple[str, str, str, bool]
"""(field, value, what it must be, required)."""


def require_ids(*checks: Check) -> None:
    """Each value must be an identifier; every problem is reported at once."""
    problems = []
    for field, value, what, required in checks:
        if not value:
            if required:
                problems.append((field, "is required"))
        elif not IDENTIFIER.match(value):
            problems.append((field, f"{value!r} is not {what}"))
    if problems:
        raise invalid(problems)


async def known_bucket(gw: Gateway, field: str, name: str) -> None:
    """A well-formed name of a bucket neither configured nor registered is NOT_FOUND."""
    require_ids((field, name, "a bucket name", True))
    if not await gw.buckets.known(name):
        raise not_found(f"bucket {name}")


class SnapshotService(prpc.SnapshotServiceServicer):
    def __init__(self, gw: Gateway, snapshots: KeyValue) -> None:
        self.gw, self.snapshots = gw, snapshots

    async def _record(self, snapshot_id: str) -> AppSnapshotRecord:
        require_ids(("id", snapshot_id, "a snapshot id", True))
        entry = await self.snapshots.get(snapshot_id)
        if entry is None:
            raise not_found(f"snapshot {snapshot_id}")
        record = AppSnapshotRecord.model_validate_json(entry.value)
        authz.require_scope(
            authz.current(), authz.snapshot_targets(record.cluster, record.namespace)
        )
        return record

    @guard
    async def CreateSnapshot(
        self, request: ppb.CreateSnapshotRequest, context: Context
    ) -> pb.Operation:
        check = Checker(self.gw.settings)
        check.pattern("app_id", request.app_id, APP_ID, "an app id <cluster>.<namespace>.<name>")
        check.pattern("bucket", request.bucket, IDENTIFIER, "a bucket name")
        check.pattern("request_id", request.request_id, IDENTIFIER, "an identifier", required=False)
        if check.violations:
            raise invalid(check.violations)
        await known_bucket(self.gw, "bucket", request.bucket)
        await self.gw.app(request.app_id)
        op_id = f"snapshot-{request.request_id}" if request.request_id else new_id("snapshot")
        op = Operation(
            id=op_id,
            kind="snapshot",
            app_id=request.app_id,
            bucket=request.bucket,
            snapshot_id=op_id,  # the snapshot is named after the operation taking it
            requested_by=authz.current().name,
        )
        return await self.gw.start(
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

    @guard
    async def ListSnapshots(
        self, request: ppb.ListSnapshotsRequest, context: Context
    ) -> ppb.ListSnapshotsResponse:
        principal = authz.current()

        async def load(key: str) -> ppb.Snapshot | None:
            entry = await self.snapshots.get(key)
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
            await self.snapshots.keys(), load, request.page_size, request.page_token
        )
        return ppb.ListSnapshotsResponse(snapshots=items, next_page_token=token)

    @guard
    async def GetSnapshot(self, request: ppb.GetSnapshotRequest, context: Context) -> ppb.Snapshot:
        return snapshot_message(await self._record(request.id))

    @guard
    async def DeleteSnapshot(
        self, request: ppb.DeleteSnapshotRequest, context: Context
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
        return await self.gw.start(
            op,
            request.request_id,
            subjects.DELETE_SNAPSHOT,
            lambda op: DeleteAppSnapshot(
                operation_id=op.id, snapshot_id=record.id, requested_by=op.requested_by
            ),
        )


class BackupCatalogService(prpc.BackupCatalogServiceServicer):
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    async def _entry(self, bucket: str, backup_id: str) -> CatalogEntry:
        require_ids(
            ("bucket", bucket, "a bucket name", True), ("id", backup_id, "a backup id", True)
        )
        await known_bucket(self.gw, "bucket", bucket)
        store = self.gw.buckets.open(bucket)
        entry = await asyncio.to_thread(read_entry, store, backup_id)
        if entry is None:
            raise not_found(f"backup {backup_id} in bucket {bucket}")
        authz.require_scope(authz.current(), authz.backup_targets(entry.cluster, entry.namespaces))
        return entry

    @guard
    async def ListBackups(
        self, request: ppb.ListBackupsRequest, context: Context
    ) -> ppb.ListBackupsResponse:
        await known_bucket(self.gw, "bucket", request.bucket)
        principal = authz.current()
        store = self.gw.buckets.open(request.bucket)
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
            return backup_message(request.bucket, entry)

        ids = await asyncio.to_thread(backup_ids, store)
        items, token = await load_page(ids, load, request.page_size, request.page_token)
        return ppb.ListBackupsResponse(backups=items, next_page_token=token)

    @guard
    async def GetBackup(self, request: ppb.GetBackupRequest, context: Context) -> ppb.Backup:
        return backup_message(request.bucket, await self._entry(request.bucket, request.id))

    @guard
    async def DeleteBackup(
        self, request: ppb.DeleteBackupRequest, context: Context
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
        return await self.gw.start(
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
