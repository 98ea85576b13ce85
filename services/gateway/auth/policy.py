"""The access policy of every RPC, enforced by one server interceptor.

Each RPC declares the role it needs and the (cluster, namespace) pairs its request touches.
An RPC without a policy is denied; health checking and reflection need no credentials.
Checks the request alone cannot decide (the namespaces of a stored app, the source of a
backup, the scope of an existing operation) run in the servicers through `authz`.
ListApps is not denied for scope: it returns only the apps in scope.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from services.gateway.auth import authz
from services.gateway.auth.authz import Role, Target
from services.gateway.auth.tokens import Authenticator
from services.gateway.errors import ApiError
from vessel.api.v1 import infra_pb2, protection_pb2, tokens_pb2, vessel_pb2

EXEMPT_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
FILES = (
    vessel_pb2.DESCRIPTOR,
    tokens_pb2.DESCRIPTOR,
    protection_pb2.DESCRIPTOR,
    infra_pb2.DESCRIPTOR,
)


def _nothing(request: Any) -> list[Target]:
    return []


@dataclass(frozen=True)
class Policy:
    role: Role
    targets: Callable[[Any], list[Target]] = field(default=_nothing)


def method(service: str, name: str) -> str:
    """`/package.Service/Method`, checked against the descriptors (a typo fails at import)."""
    for file in FILES:
        if service in file.services_by_name:
            full = file.services_by_name[service]
            if name not in full.methods_by_name:
                break
            return f"/{full.full_name}/{name}"
    raise KeyError(f"no RPC {service}.{name}")


def _restore(request: vessel_pb2.CreateRestoreRequest) -> list[Target]:
    return authz.restore_targets(request.target_cluster, dict(request.namespace_mapping))


def _copy(request: Any) -> list[Target]:
    """A clone or migration: the app it reads and the namespaces it writes in the target."""
    if not request.target_cluster:  # invalid: the servicer names the missing field
        return authz.app_id_target(request.app_id)
    mapping = dict(request.namespace_mapping)
    return authz.copy_targets(request.app_id, request.target_cluster, mapping)


def _cluster(request: Any) -> list[Target]:
    """The cluster a request names, if any (empty: every cluster, filtered by scope)."""
    return [(request.cluster, None)] if request.cluster else []


def _cluster_namespace(request: Any) -> list[Target]:
    if not request.cluster:
        return []
    return [(request.cluster, request.namespace or None)]


POLICIES: dict[str, Policy] = {
    method("AppService", "ListApps"): Policy(Role.VIEWER),
    method("AppService", "GetApp"): Policy(Role.VIEWER, lambda r: authz.app_id_target(r.id)),
    method("AppService", "UnmanageApp"): Policy(Role.OWNER, lambda r: authz.app_id_target(r.id)),
    method("AppService", "ManageApp"): Policy(Role.OWNER, lambda r: authz.app_id_target(r.id)),
    method("BackupService", "CreateBackup"): Policy(
        Role.MEMBER, lambda r: authz.app_id_target(r.app_id)
    ),
    method("RestoreService", "CreateRestore"): Policy(Role.MEMBER, _restore),
    method("OperationService", "GetOperation"): Policy(Role.VIEWER),
    method("OperationService", "WaitOperation"): Policy(Role.VIEWER),
    # Protection: viewers read, members create, owners delete and manage schedules. Stored
    # objects (snapshots, backups, schedules, operations) are scoped in the servicers.
    method("SnapshotService", "CreateSnapshot"): Policy(
        Role.MEMBER, lambda r: authz.app_id_target(r.app_id)
    ),
    method("SnapshotService", "ListSnapshots"): Policy(Role.VIEWER),
    method("SnapshotService", "GetSnapshot"): Policy(Role.VIEWER),
    method("SnapshotService", "DeleteSnapshot"): Policy(Role.OWNER),
    method("BackupCatalogService", "ListBackups"): Policy(Role.VIEWER),
    method("BackupCatalogService", "GetBackup"): Policy(Role.VIEWER),
    method("BackupCatalogService", "DeleteBackup"): Policy(Role.OWNER),
    # A backup's files are the app's data, as a restore is: members read and restore them
    # (scoped by the backup's listing and the target, in the servicer).
    method("BackupFileService", "ListBackupFiles"): Policy(Role.MEMBER),
    method("BackupFileService", "DownloadBackupFiles"): Policy(Role.MEMBER),
    method("BackupFileService", "RestoreBackupFiles"): Policy(Role.MEMBER),
    method("PlatformService", "RecoverPlatform"): Policy(Role.ADMIN),
    method("VerificationService", "CreateVerification"): Policy(
        Role.MEMBER, lambda r: authz.app_id_target(r.app_id)
    ),
    method("ScheduleService", "CreateSchedule"): Policy(
        Role.OWNER, lambda r: authz.app_id_target(r.schedule.app_id)
    ),
    method("ScheduleService", "UpdateSchedule"): Policy(
        Role.OWNER, lambda r: authz.app_id_target(r.schedule.app_id)
    ),
    method("ScheduleService", "GetSchedule"): Policy(Role.VIEWER),
    method("ScheduleService", "ListSchedules"): Policy(Role.VIEWER),
    method("ScheduleService", "DeleteSchedule"): Policy(Role.OWNER),
    method("BucketService", "ListBuckets"): Policy(Role.VIEWER),
    method("BucketService", "GetBucket"): Policy(Role.VIEWER),
    method("BucketService", "RegisterBucket"): Policy(Role.ADMIN),
    method("BucketService", "RemoveBucket"): Policy(Role.ADMIN),
    method("ProgressService", "WatchOperation"): Policy(Role.VIEWER),
    # Clones and migrations are members' work; hooks run commands in the app's containers,
    # so only owners change them.
    method("CloneService", "CreateClone"): Policy(Role.MEMBER, _copy),
    method("MigrationService", "CreateMigration"): Policy(Role.MEMBER, _copy),
    method("HookService", "PutHook"): Policy(
        Role.OWNER, lambda r: authz.app_id_target(r.hook.app_id)
    ),
    method("HookService", "ListHooks"): Policy(Role.VIEWER),
    method("HookService", "GetHook"): Policy(Role.VIEWER, lambda r: authz.app_id_target(r.app_id)),
    method("HookService", "DeleteHook"): Policy(
        Role.OWNER, lambda r: authz.app_id_target(r.app_id)
    ),
    method("OperationService", "ListOperations"): Policy(Role.VIEWER),
    method("OperationService", "CancelOperation"): Policy(Role.MEMBER),
    # Infrastructure: viewers read what their scope covers (lists are filtered, stored
    # volumes and snapshots are checked in the servicers); admins manage backends and
    # clusters.
    method("BackendService", "ListBackends"): Policy(Role.VIEWER, _cluster),
    method("BackendService", "GetBackend"): Policy(Role.VIEWER, _cluster),
    method("BackendService", "AddBackend"): Policy(Role.ADMIN),
    method("BackendService", "UpdateBackend"): Policy(Role.ADMIN),
    method("BackendService", "RemoveBackend"): Policy(Role.ADMIN),
    method("StorageClassService", "ListStorageClasses"): Policy(Role.VIEWER, _cluster),
    method("VolumeService", "ListVolumes"): Policy(Role.VIEWER, _cluster_namespace),
    method("VolumeService", "GetVolume"): Policy(Role.VIEWER, _cluster),
    method("VolumeSnapshotService", "ListVolumeSnapshots"): Policy(Role.VIEWER, _cluster_namespace),
    method("VolumeSnapshotService", "GetVolumeSnapshot"): Policy(Role.VIEWER, _cluster),
    method("ClusterService", "ListClusters"): Policy(Role.VIEWER),
    method("ClusterService", "GetCluster"): Policy(Role.VIEWER, lambda r: [(r.id, None)]),
    method("ClusterService", "RegisterCluster"): Policy(Role.ADMIN),
    method("ClusterService", "RemoveCluster"): Policy(Role.ADMIN),
    method("ClusterService", "CreateJoinToken"): Policy(Role.ADMIN),
    method("ActivityService", "ListActivity"): Policy(Role.VIEWER),
    method("EventService", "WatchEvents"): Policy(Role.VIEWER),  # filtered by scope per event
    method("TokenService", "CreateToken"): Policy(Role.ADMIN),
    method("TokenService", "ListTokens"): Policy(Role.ADMIN),
    method("TokenService", "RevokeToken"): Policy(Role.ADMIN),
}


def all_methods() -> list[str]:
    return [
        f"/{service.full_name}/{m.name}"
        for file in FILES
        for service in file.services_by_name.values()
        for m in service.methods
    ]


def _short(full: str) -> str:
    service, _, name = full.strip("/").rpartition("/")
    return f"{service.rsplit('.', 1)[-1]}.{name}"


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator

    async def _admit(self, full: str, request: Any, context: grpc.aio.ServicerContext) -> None:
        metadata = dict(context.invocation_metadata() or ())
        principal = await self.authenticator.authenticate(metadata.get("authorization"))
        policy = POLICIES.get(full)
        if policy is None:
            raise ApiError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"{_short(full)} has no access policy; denied",
                reason="NO_POLICY",
            )
        authz.require_role(principal, policy.role, _short(full))
        authz.require_scope(principal, policy.targets(request))
        authz.bind(principal)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        full: str = details.method
        if handler is None or full.startswith(EXEMPT_PREFIXES):
            return handler
        admit = self._admit
        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                try:
                    await admit(full, request, context)
                except ApiError as exc:
                    await context.abort_with_status(exc.status())
                return await inner(request, context)

            return grpc.unary_unary_rpc_method_handler(
                unary, handler.request_deserializer, handler.response_serializer
            )
        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                try:
                    await admit(full, request, context)
                except ApiError as exc:
                    await context.abort_with_status(exc.status())
                async for item in inner_stream(request, context):
                    yield item

            return grpc.unary_stream_rpc_method_handler(
                stream, handler.request_deserializer, handler.response_serializer
            )

        async def refuse(request: Any, context: grpc.aio.ServicerContext) -> None:
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED, f"{_short(full)}: streamed requests are denied"
            )

        # Client-streaming RPCs cannot be checked before their requests arrive: none exist.
        make = (
            grpc.stream_unary_rpc_method_handler
            if handler.stream_unary is not None
            else grpc.stream_stream_rpc_method_handler
        )
        return make(refuse, handler.request_deserializer, handler.response_serializer)
