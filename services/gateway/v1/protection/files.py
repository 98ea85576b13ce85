"""BackupFileService: browse, download and restore single files of a backed-up volume,
read from the bucket's repository without restoring the volume.

Every call needs role member (file contents are the app's data, as a restore is) and
scope over every namespace the backup holds, by its listing entry; a restore also over
the namespace it writes. Protection then verifies the sealed record before it names the
volume's snapshot. Paths are checked here for a readable error and again, against the
snapshot's trees, by the mover.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import AsyncIterator

import grpc

from services.gateway.auth import authz
from services.gateway.context import GatewayContext
from services.gateway.errors import ApiError, RpcContext, guard, invalid
from services.gateway.operations import new_id, start
from services.gateway.reads import paging
from services.gateway.reads.backup_files import CHUNK, VolumeFiles
from services.gateway.v1.protection.convert import file_entry_message
from services.gateway.v1.vessel.convert import operation_message
from services.gateway.v1.vessel.restores import backup_source
from services.gateway.validation import DNS_LABEL, IDENTIFIER, Checker, Violations
from vessel.api.v1 import protection_pb2 as ppb
from vessel.api.v1 import protection_pb2_grpc as prpc
from vessel.api.v1 import vessel_pb2 as pb
from vessel.contracts import subjects
from vessel.contracts.files import PATHS_MAX, BackupVolumeLookup, RestoreFiles
from vessel.contracts.operations import Operation

CLAIM_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
"""A claim's name: a DNS subdomain, as Kubernetes names objects (namespaces are labels)."""


def path_problem(path: str) -> str:
    """Why `path` cannot name an entry of a volume ('' when it can)."""
    if len(path) > 4096 or "\x00" in path:
        return "is longer than 4096 characters or holds NUL"
    if any(part in (".", "..") for part in path.split("/")):
        return f"{path!r} holds '.' or '..': name the entry itself"
    return ""


class BackupFileService(prpc.BackupFileServiceServicer):
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    async def _checked(self, ref: ppb.BackupVolumeRef, extra: Violations) -> tuple[str, str]:
        """Validates the volume reference and the caller's scope over the backup: (the
        backup's cluster, the cluster whose mover reads)."""
        clusters = await self.ctx.cluster_ids()
        check = Checker(self.ctx.settings, await self.ctx.buckets.names(), clusters)
        check.bucket("volume.bucket", ref.bucket)
        check.pattern("volume.backup_id", ref.backup_id, IDENTIFIER, "a backup id")
        check.pattern("volume.namespace", ref.namespace, DNS_LABEL, "a namespace")
        check.pattern("volume.claim", ref.claim, CLAIM_NAME, "a claim name")
        if ref.cluster:
            check.cluster("volume.cluster", ref.cluster)
        check.violations += extra
        if check.violations:
            raise invalid(check.violations)
        cluster, namespaces = await backup_source(self.ctx, ref.bucket, ref.backup_id)
        principal = authz.current()
        authz.require_scope(principal, authz.backup_targets(cluster, namespaces))
        authz.require_scope(principal, [(cluster, ref.namespace)])
        return cluster, ref.cluster

    async def _files(self, ref: ppb.BackupVolumeRef, extra: Violations) -> VolumeFiles:
        _, reader = await self._checked(ref, extra)
        lookup = BackupVolumeLookup(
            bucket=ref.bucket, backup_id=ref.backup_id, namespace=ref.namespace, claim=ref.claim
        )
        return await VolumeFiles.find(self.ctx.bus, lookup, reader)

    @guard
    async def ListBackupFiles(
        self, request: ppb.ListBackupFilesRequest, context: RpcContext
    ) -> ppb.ListBackupFilesResponse:
        size = paging.page_size(request.page_size)
        offset = _offset(request.page_token)
        problem = path_problem(request.path)
        files = await self._files(request.volume, [("path", problem)] if problem else [])
        page = await files.listing(request.path or "/", offset, size)
        after = offset + len(page.entries)
        return ppb.ListBackupFilesResponse(
            entry=file_entry_message(page.entry),
            entries=[file_entry_message(e) for e in page.entries],
            next_page_token=paging.encode(str(after)) if after < page.total else "",
            total=page.total,
        )

    async def DownloadBackupFiles(
        self, request: ppb.DownloadBackupFilesRequest, context: RpcContext
    ) -> AsyncIterator[ppb.FileData]:
        try:
            problem = path_problem(request.path)
            files = await self._files(request.volume, [("path", problem)] if problem else [])
            entry = (await files.listing(request.path or "/", action="stat")).entry
            name = posixpath.basename(entry.path) or request.volume.claim
            if entry.type == "file":
                yield ppb.FileData(name=name, format="file", size=entry.size)
                async for chunk in files.content(entry):
                    yield ppb.FileData(data=chunk)
            elif entry.type == "dir":
                yield ppb.FileData(name=f"{name}.tar", format="tar")
                async for data in _pieces(files.tar(entry)):
                    yield ppb.FileData(data=data)
            else:
                raise ApiError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"{entry.path} is a {entry.type}: only files and directories download",
                )
        except ApiError as exc:
            await context.abort_with_status(exc.status())

    @guard
    async def RestoreBackupFiles(
        self, request: ppb.RestoreBackupFilesRequest, context: RpcContext
    ) -> pb.Operation:
        ref = request.volume
        problems: Violations = []
        if not 0 < len(request.paths) <= PATHS_MAX:
            problems.append(("paths", f"name 1 to {PATHS_MAX} paths"))
        for index, path in enumerate(request.paths):
            problem = path_problem(path) or ("" if path.strip("/") else "names the whole volume")
            if problem:
                problems.append((f"paths[{index}]", problem))
        if problem := path_problem(request.target_dir):
            problems.append(("target_dir", problem))
        if request.target_namespace and not DNS_LABEL.match(request.target_namespace):
            problems.append(("target_namespace", f"{request.target_namespace!r} is not one"))
        if request.target_claim and not CLAIM_NAME.match(request.target_claim):
            problems.append(("target_claim", f"{request.target_claim!r} is not a claim name"))
        if request.request_id and not IDENTIFIER.match(request.request_id):
            problems.append(("request_id", f"{request.request_id!r} is not an identifier"))
        if request.target_cluster and request.target_cluster not in await self.ctx.cluster_ids():
            problems.append(("target_cluster", f"cluster {request.target_cluster!r} is unknown"))
        source, _ = await self._checked(ref, problems)
        target_cluster = request.target_cluster or source
        target_namespace = request.target_namespace or ref.namespace
        authz.require_scope(authz.current(), [(target_cluster, target_namespace)])
        op = Operation(
            id=new_id("restore-files"),
            kind="restore-files",
            backup_id=ref.backup_id,
            bucket=ref.bucket,
            source_cluster=source,
            target_cluster=target_cluster,
            namespace_mapping={ref.namespace: target_namespace},
            requested_by=authz.current().name,
        )
        command = RestoreFiles(
            operation_id=op.id,
            bucket=ref.bucket,
            backup_id=ref.backup_id,
            namespace=ref.namespace,
            claim=ref.claim,
            paths=list(request.paths),
            target_cluster=target_cluster,
            target_namespace=target_namespace,
            target_claim=request.target_claim or ref.claim,
            target_dir=request.target_dir,
            requested_by=op.requested_by,
        )
        started = await start(
            self.ctx,
            op,
            request.request_id,
            subjects.RESTORE_FILES,
            lambda o: command.model_copy(update={"operation_id": o.id}),
        )
        return operation_message(started)


def _offset(token: str) -> int:
    if not token:
        return 0
    try:
        return int(paging.decode(token))
    except ValueError:
        raise invalid([("page_token", f"{token!r} is not a token this API handed out")]) from None


async def _pieces(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The stream regrouped into messages of about `CHUNK` bytes (tar headers are small)."""
    held = bytearray()
    async for data in stream:
        held += data
        if len(held) >= CHUNK:
            yield bytes(held)
            held.clear()
    if held:
        yield bytes(held)
