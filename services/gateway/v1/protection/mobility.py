"""CloneService and MigrationService: moving apps (mobility) over gRPC. Clones and
migrations are validated and scoped here, and run by protection as one composite
operation each (its backup and restore steps are ordinary operations).

A request is refused before anything runs when the request, the app, the snapshot or the
backup it names, or the restore part is wrong: a clone from an existing backup asks
protection's restore preflight, as CreateRestore does; a copy whose backup does not exist
yet has only its StorageClass mapping checked, against the target cluster's classes.
"""

from __future__ import annotations

import asyncio
from typing import Literal, cast

import grpc

from services.gateway.auth import authz
from services.gateway.context import GatewayContext
from services.gateway.errors import ApiError, RpcContext, guard, invalid, not_found
from services.gateway.operations import earlier, new_id, start
from services.gateway.provisioners import ask
from services.gateway.reads.catalog_reader import read_entry
from services.gateway.v1.vessel.convert import operation_message
from services.gateway.v1.vessel.restore_options import is_plain, preflight, restore_options
from services.gateway.validation import APP_ID, IDENTIFIER, Checker, Violations
from vessel.api.v1 import protection_pb2 as ppb
from vessel.api.v1 import protection_pb2_grpc as prpc
from vessel.api.v1 import vessel_pb2 as pb
from vessel.contracts import queries, subjects
from vessel.contracts.infra_queries import StorageClassList, StorageClassQuery
from vessel.contracts.operations import Operation
from vessel.contracts.protection import (
    CreateClone,
    CreateMigration,
    RestoreOptions,
    RestorePreflight,
)

Source = Literal["live", "snapshot", "backup"]
SOURCES: tuple[Source, ...] = ("live", "snapshot", "backup")
CLASSES_SECONDS = 3.0
CopyRequest = ppb.CreateCloneRequest | ppb.CreateMigrationRequest


def copy_options(request: CopyRequest) -> tuple[RestoreOptions, Violations]:
    """The restore options of a clone or migration, checked as CreateRestore checks them."""
    as_restore = pb.CreateRestoreRequest(
        storage_class_mapping=dict(request.storage_class_mapping),
        include=list(request.include),
        exclude=list(request.exclude),
        transforms_json=request.transforms_json,
        existing=request.existing,
    )
    return restore_options(as_restore)


def clone_source(request: ppb.CreateCloneRequest, check: Checker) -> str:
    """The clone's source: as given, else by the id given (neither: the live app)."""
    given = request.source or (
        "snapshot" if request.snapshot_id else "backup" if request.backup_id else "live"
    )
    if given not in SOURCES:
        check.add("source", f"{given!r} is not one of {', '.join(SOURCES)}")
        return given
    check.pattern(
        "snapshot_id", request.snapshot_id, IDENTIFIER, "a snapshot id", given == "snapshot"
    )
    check.pattern("backup_id", request.backup_id, IDENTIFIER, "a backup id", given == "backup")
    if request.snapshot_id and given != "snapshot":
        check.add("snapshot_id", f"is only for source snapshot, not {given}")
    if request.backup_id and given != "backup":
        check.add("backup_id", f"is only for source backup, not {given}")
    return given


def check_common(check: Checker, request: CopyRequest) -> None:
    check.pattern("app_id", request.app_id, APP_ID, "an app id <cluster>.<namespace>.<name>")
    check.pattern("bucket", request.bucket, IDENTIFIER, "a bucket name")
    check.cluster("target_cluster", request.target_cluster)
    check.mapping("namespace_mapping", dict(request.namespace_mapping))
    check.pattern("request_id", request.request_id, IDENTIFIER, "an identifier", required=False)


def not_onto_itself(cluster: str, namespaces: list[str], request: CopyRequest) -> None:
    """A copy into the app's own cluster must map each of its namespaces elsewhere."""
    if request.target_cluster != cluster:
        return
    mapping = dict(request.namespace_mapping)
    same = [ns for ns in namespaces if mapping.get(ns, ns) == ns]
    if same:
        raise invalid(
            [
                (
                    f"namespace_mapping[{ns}]",
                    f"the copy goes to the app's own cluster {cluster}: map namespace {ns} "
                    "to another",
                )
                for ns in same
            ]
        )


async def check_storage_classes(ctx: GatewayContext, cluster: str, mapping: dict[str, str]) -> None:
    """Each mapped-to StorageClass must exist in the target cluster. When its provisioner
    does not answer, the copy is accepted: its restore step checks the classes again."""
    if not mapping:
        return
    try:
        reply = await ask(
            ctx.bus,
            cluster,
            queries.QUERY_PROVISIONER_STORAGECLASSES,
            StorageClassQuery(),
            StorageClassList,
            CLASSES_SECONDS,
        )
    except ApiError as exc:
        if exc.code == grpc.StatusCode.UNAVAILABLE:
            return
        raise
    known = {c.name for c in reply.storage_classes}
    missing = [
        (
            f"storage_class_mapping[{source}]",
            f"StorageClass {target!r} does not exist in cluster {cluster}",
        )
        for source, target in sorted(mapping.items())
        if target not in known
    ]
    if missing:
        raise invalid(missing)


async def backup_of(
    ctx: GatewayContext, bucket: str, backup_id: str, app_id: str
) -> tuple[str, list[str]]:
    """(cluster, namespaces) of a backup of this app (NOT_FOUND otherwise: another app's
    backup is not revealed)."""
    entry = await asyncio.to_thread(read_entry, ctx.buckets.open(bucket), backup_id)
    if entry is None:
        raise not_found(f"backup {backup_id} in bucket {bucket}")
    if entry.view is None:
        raise ApiError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"backup {backup_id} in bucket {bucket} cannot be read: {entry.error}",
        )
    if entry.view.app_id and entry.view.app_id != app_id:
        raise not_found(f"backup {backup_id} of app {app_id} in bucket {bucket}")
    return entry.view.cluster, entry.namespaces


class CloneService(prpc.CloneServiceServicer):
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    @guard
    async def CreateClone(
        self, request: ppb.CreateCloneRequest, context: RpcContext
    ) -> pb.Operation:
        check = Checker(self.ctx.settings, clusters=await self.ctx.cluster_ids())
        check_common(check, request)
        source = clone_source(request, check)
        options, problems = copy_options(request)
        check.violations += problems
        if check.violations:
            raise invalid(check.violations)
        await self.ctx.known_bucket("bucket", request.bucket)
        mapping = dict(request.namespace_mapping)
        if source == "backup":
            cluster, namespaces = await backup_of(
                self.ctx, request.bucket, request.backup_id, request.app_id
            )
        else:
            app = await self.ctx.app(request.app_id)
            cluster, namespaces = app.cluster, [t[1] or "" for t in authz.app_targets(app)]
            if source == "snapshot":
                await self.ctx.snapshot_of(request.app_id, request.snapshot_id)
        principal = authz.current()
        authz.require_scope(
            principal,
            authz.copy_targets(request.app_id, request.target_cluster, mapping, namespaces),
        )
        not_onto_itself(cluster, namespaces, request)
        if (first := await earlier(self.ctx, "clone", request.request_id)) is not None:
            return operation_message(first)
        if source == "backup":
            query = RestorePreflight(
                backup_id=request.backup_id,
                bucket=request.bucket,
                target_cluster=request.target_cluster,
                namespace_mapping=mapping,
                options=options,
            )
            await preflight(self.ctx.bus, query, required=not is_plain(options))
        else:
            await check_storage_classes(
                self.ctx, request.target_cluster, options.storage_class_mapping
            )
        op = Operation(
            id=new_id("clone"),
            kind="clone",
            app_id=request.app_id,
            bucket=request.bucket,
            source_cluster=cluster,
            target_cluster=request.target_cluster,
            namespace_mapping=mapping,
            snapshot_id=request.snapshot_id,
            backup_id=request.backup_id,
            restore_options=options,
            requested_by=principal.name,
        )
        started = await start(
            self.ctx,
            op,
            request.request_id,
            subjects.CREATE_CLONE,
            lambda op: CreateClone(
                operation_id=op.id,
                app_id=op.app_id,
                source=cast(Source, source),  # one of SOURCES, checked above
                snapshot_id=op.snapshot_id or None,
                backup_id=op.backup_id or None,
                bucket=op.bucket,
                target_cluster=op.target_cluster,
                namespace_mapping=op.namespace_mapping,
                options=options,
                requested_by=op.requested_by,
            ),
        )
        return operation_message(started)


class MigrationService(prpc.MigrationServiceServicer):
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    @guard
    async def CreateMigration(
        self, request: ppb.CreateMigrationRequest, context: RpcContext
    ) -> pb.Operation:
        check = Checker(self.ctx.settings, clusters=await self.ctx.cluster_ids())
        check_common(check, request)
        options, problems = copy_options(request)
        check.violations += problems
        if check.violations:
            raise invalid(check.violations)
        await self.ctx.known_bucket("bucket", request.bucket)
        app = await self.ctx.app(request.app_id)
        namespaces = [t[1] or "" for t in authz.app_targets(app)]
        mapping = dict(request.namespace_mapping)
        principal = authz.current()
        authz.require_scope(
            principal,
            authz.copy_targets(request.app_id, request.target_cluster, mapping, namespaces),
        )
        not_onto_itself(app.cluster, namespaces, request)
        if (first := await earlier(self.ctx, "migrate", request.request_id)) is not None:
            return operation_message(first)
        await check_storage_classes(self.ctx, request.target_cluster, options.storage_class_mapping)
        op = Operation(
            id=new_id("migrate"),
            kind="migrate",
            app_id=request.app_id,
            bucket=request.bucket,
            source_cluster=app.cluster,
            target_cluster=request.target_cluster,
            namespace_mapping=mapping,
            restore_options=options,
            requested_by=principal.name,
        )
        started = await start(
            self.ctx,
            op,
            request.request_id,
            subjects.CREATE_MIGRATION,
            lambda op: CreateMigration(
                operation_id=op.id,
                app_id=op.app_id,
                bucket=op.bucket,
                target_cluster=op.target_cluster,
                namespace_mapping=op.namespace_mapping,
                options=options,
                scale_down_source=not request.keep_source_running,
                requested_by=op.requested_by,
            ),
        )
        return operation_message(started)
