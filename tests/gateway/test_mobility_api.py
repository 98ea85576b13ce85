"""CloneService and MigrationService through a real gateway over TLS with tokens, real NATS
and a real S3 bucket holding backup catalogs.

Protection does not run: the commands are read back from the work queue, its restore
preflight is answered on the real query subject by a responder each test instructs, and
the target cluster's StorageClasses by a responder on the provisioner's query subject.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from tests.gateway.harness import Pki, bearer, issue, unique
from tests.gateway.protection_harness import (
    Names,
    World,
    answering,
    last_command,
    open_world,
    reason,
    violations,
)
from vessel.api.v1 import protection_pb2 as ppb
from vessel.api.v1 import protection_pb2_grpc as prpc
from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc
from vessel.bus.nats_port import Bus
from vessel.contracts import queries, subjects
from vessel.contracts.infra_queries import StorageClassInfo, StorageClassList
from vessel.contracts.protection import (
    CreateClone,
    CreateMigration,
    PreflightViolation,
)
from vessel_dev.rig.processes import NatsServer, S3Server

N = Names()
WEST_CLASSES = ("gold", "silver")


@pytest.fixture(scope="module")
async def world(nats_server: NatsServer, s3_server: S3Server, pki: Pki) -> AsyncIterator[World]:
    async def classes(subject: str, body: bytes) -> bytes:
        found = [StorageClassInfo(name=n, provisioner="vessel.io/local") for n in WEST_CLASSES]
        return StorageClassList(cluster=N.west, storage_classes=found).model_dump_json().encode()

    subject = queries.QUERY_PROVISIONER_STORAGECLASSES.format(cluster=N.west)
    async with open_world(N, "gateway-mobility", nats_server, s3_server, pki, preflight=True) as w:
        provisioner = await w.bus.serve(subject, classes)
        try:
            yield w
        finally:
            provisioner.cancel()
            with contextlib.suppress(BaseException):
                await provisioner


@pytest.fixture(autouse=True)
def accept(world: World) -> None:
    world.answer = None


def clone_request(**fields: Any) -> ppb.CreateCloneRequest:
    base: dict[str, Any] = {
        "app_id": N.shop_app,
        "bucket": "default",
        "target_cluster": N.west,
        "namespace_mapping": {"shop": "shop-copy"},
    }
    base.update(fields)
    return ppb.CreateCloneRequest(**base)


def migration_request(**fields: Any) -> ppb.CreateMigrationRequest:
    base: dict[str, Any] = {"app_id": N.shop_app, "bucket": "default", "target_cluster": N.west}
    base.update(fields)
    return ppb.CreateMigrationRequest(**base)


async def clone(w: World, request: ppb.CreateCloneRequest, token: str = "member") -> pb.Operation:
    op: pb.Operation = await prpc.CloneServiceStub(w.channel).CreateClone(
        request, metadata=bearer(w.tokens[token])
    )
    return op


async def migrate(
    w: World, request: ppb.CreateMigrationRequest, token: str = "member"
) -> pb.Operation:
    op: pb.Operation = await prpc.MigrationServiceStub(w.channel).CreateMigration(
        request, metadata=bearer(w.tokens[token])
    )
    return op


async def refused(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value


async def last_seq(bus: Bus, message: subjects.Message) -> int:
    """The stream sequence of the newest command on `message`'s subject (0: none)."""
    try:
        raw = await bus.js.get_last_msg(subjects.COMMANDS_STREAM, message.subject_for())
    except Exception:  # no message on the subject yet
        return 0
    return int(raw.seq or 0)


# ---- clones ----


async def test_a_live_clone_sends_the_command_and_a_retry_returns_the_same(world: World) -> None:
    rid = unique("c")
    request = clone_request(request_id=rid, existing="update")
    op = await clone(world, request)
    assert (op.id, op.kind, op.phase) == (f"clone-{rid}", "clone", "New")
    assert op.app_id == N.shop_app and op.target_cluster == N.west
    assert dict(op.namespace_mapping) == {"shop": "shop-copy"}
    command = await last_command(world.bus, subjects.CREATE_CLONE)
    assert isinstance(command, CreateClone)
    assert (command.operation_id, command.app_id, command.source) == (op.id, N.shop_app, "live")
    assert (command.bucket, command.target_cluster) == ("default", N.west)
    assert command.namespace_mapping == {"shop": "shop-copy"}
    assert command.snapshot_id is None and command.backup_id is None
    assert command.options.existing == "update" and command.requested_by != "anonymous"
    sent = await last_seq(world.bus, subjects.CREATE_CLONE)
    again = await clone(world, request)
    assert again.id == op.id and again.created == op.created
    assert await last_seq(world.bus, subjects.CREATE_CLONE) == sent  # nothing sent twice
    got = await rpc.OperationServiceStub(world.channel).GetOperation(
        pb.GetOperationRequest(id=op.id), metadata=bearer(world.tokens["viewer"])
    )
    assert got.kind == "clone" and got.target_cluster == N.west


async def test_a_clone_from_a_snapshot_names_it(world: World) -> None:
    op = await clone(world, clone_request(snapshot_id=N.snapshot(1)))
    command = await last_command(world.bus, subjects.CREATE_CLONE)
    assert isinstance(command, CreateClone) and command.operation_id == op.id
    assert (command.source, command.snapshot_id) == ("snapshot", N.snapshot(1))
    for missing in ("snap-nowhere", N.snapshot(9)):  # unknown, and another app's
        error = await refused(clone(world, clone_request(source="snapshot", snapshot_id=missing)))
        assert error.code() == grpc.StatusCode.NOT_FOUND, missing
        assert missing in (error.details() or "")


async def test_a_clone_from_a_backup_asks_the_preflight_with_its_options(world: World) -> None:
    asked = len(world.preflight_requests)
    transforms = [{"match": {"kinds": ["Deployment"]}, "patch": [{"op": "remove", "path": "/x"}]}]
    request = clone_request(
        source="backup",
        backup_id=N.backup(2),
        storage_class_mapping={"fast": "gold"},
        exclude=[pb.ResourceFilter(kinds=["Service"])],
        transforms_json=json.dumps(transforms),
    )
    op = await clone(world, request)
    (query,) = world.preflight_requests[asked:]
    assert query["backup_id"] == N.backup(2) and query["target_cluster"] == N.west
    assert query["namespace_mapping"] == {"shop": "shop-copy"}
    assert query["options"]["storage_class_mapping"] == {"fast": "gold"}
    command = await last_command(world.bus, subjects.CREATE_CLONE)
    assert isinstance(command, CreateClone) and command.operation_id == op.id
    assert (command.source, command.backup_id) == ("backup", N.backup(2))
    assert command.options.model_dump(mode="json") == query["options"]
    assert command.options.exclude[0].kinds == ["Service"]


async def test_a_backup_clone_is_refused_as_a_restore_would_be(world: World) -> None:
    world.answer = answering(
        PreflightViolation(
            field="options.existing", reason="conflict", message="ConfigMap shop-copy/a exists"
        )
    )
    error = await refused(
        clone(world, clone_request(backup_id=N.backup(1), existing="fail"), "member")
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason(error) == "RESTORE_CONFLICT" and "shop-copy/a" in (error.details() or "")
    world.answer = answering(
        PreflightViolation(
            field="options.storage_class_mapping",
            reason="invalid",
            message=f"StorageClass 'tin' does not exist in cluster {N.west}",
        )
    )
    error = await refused(
        clone(world, clone_request(backup_id=N.backup(1), storage_class_mapping={"fast": "tin"}))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'tin' does not exist" in violations(error)["storage_class_mapping"]


async def test_unknown_backups_apps_and_buckets_are_not_found(world: World) -> None:
    cases = {
        "bk-nowhere": clone_request(backup_id="bk-nowhere"),
        N.backup(9): clone_request(backup_id=N.backup(9)),  # a backup of another app
        f"{N.east}.shop.nothing": clone_request(app_id=f"{N.east}.shop.nothing"),
        "bucket nowhere": clone_request(bucket="nowhere"),
    }
    for what, request in cases.items():
        error = await refused(clone(world, request))
        assert error.code() == grpc.StatusCode.NOT_FOUND, (what, error.details())
        assert what in (error.details() or ""), what
    error = await refused(migrate(world, migration_request(app_id=f"{N.east}.shop.nothing")))
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_bad_requests_name_every_field_at_fault(world: World) -> None:
    asked = len(world.preflight_requests)
    error = await refused(
        clone(
            world,
            clone_request(
                app_id="not an app",
                source="yesterday",
                bucket="",
                target_cluster="nowhere",
                namespace_mapping={"shop": "Not_A_Namespace"},
                existing="merge",
                transforms_json="[{",
                request_id="bad id!",
            ),
            "admin",
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    found = violations(error)
    for field in (
        "app_id",
        "source",
        "bucket",
        "target_cluster",
        "namespace_mapping[shop]",
        "existing",
        "transforms_json",
        "request_id",
    ):
        assert field in found, (field, found)
    pairs = {
        "snapshot_id": clone_request(source="snapshot"),
        "backup_id": clone_request(snapshot_id=N.snapshot(0), backup_id=N.backup(0)),
    }
    for field, request in pairs.items():
        error = await refused(clone(world, request))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in violations(error), (field, violations(error))
    assert len(world.preflight_requests) == asked


async def test_a_copy_onto_itself_is_invalid(world: World) -> None:
    error = await refused(clone(world, clone_request(target_cluster=N.east, namespace_mapping={})))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "own cluster" in violations(error)["namespace_mapping[shop]"]
    op = await clone(world, clone_request(target_cluster=N.east))  # mapped elsewhere: fine
    assert op.target_cluster == N.east


async def test_storage_class_mappings_are_checked_against_the_target(world: World) -> None:
    error = await refused(clone(world, clone_request(storage_class_mapping={"fast": "platinum"})))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'platinum' does not exist" in violations(error)["storage_class_mapping[fast]"]
    error = await refused(migrate(world, migration_request(storage_class_mapping={"a": "lead"})))
    assert "storage_class_mapping[a]" in violations(error)
    op = await clone(world, clone_request(storage_class_mapping={"fast": "gold"}))
    command = await last_command(world.bus, subjects.CREATE_CLONE)
    assert isinstance(command, CreateClone) and command.operation_id == op.id
    assert command.options.storage_class_mapping == {"fast": "gold"}
    # No provisioner answers for the east cluster: accepted, the restore step checks later.
    east = clone_request(target_cluster=N.east, storage_class_mapping={"fast": "any"})
    assert (await clone(world, east)).kind == "clone"


async def test_roles_and_scopes(world: World) -> None:
    error = await refused(clone(world, clone_request(), "viewer"))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED and reason(error) == "MISSING_ROLE"
    error = await refused(migrate(world, migration_request(), "viewer"))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED and reason(error) == "MISSING_ROLE"
    # The target namespace is out of the member's scope (shop, shop-copy).
    error = await refused(clone(world, clone_request(namespace_mapping={"shop": "prod"})))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED and reason(error) == "OUT_OF_SCOPE"
    assert "prod" in (error.details() or "")
    # The source app is out of scope for an owner of books only.
    books = clone_request(namespace_mapping={"shop": "books"})
    error = await refused(clone(world, books, "owner-books"))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED and reason(error) == "OUT_OF_SCOPE"
    # An app out of the member's scope, even from its backup.
    books_backup = clone_request(app_id=N.books_app, backup_id=N.backup(9))
    error = await refused(clone(world, books_backup, "member"))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    # Unmapped, the app's namespace keeps its name in the target: in scope for the member.
    op = await migrate(world, migration_request())
    assert op.kind == "migrate"


# ---- migrations ----


async def test_a_migration_scales_the_source_down_unless_asked_not_to(world: World) -> None:
    rid = unique("m")
    request = migration_request(namespace_mapping={"shop": "shop-copy"}, request_id=rid)
    op = await migrate(world, request)
    assert (op.id, op.kind) == (f"migrate-{rid}", "migrate")
    command = await last_command(world.bus, subjects.CREATE_MIGRATION)
    assert isinstance(command, CreateMigration) and command.operation_id == op.id
    assert command.scale_down_source is True and command.namespace_mapping == {"shop": "shop-copy"}
    sent = await last_seq(world.bus, subjects.CREATE_MIGRATION)
    assert (await migrate(world, request)).id == op.id
    assert await last_seq(world.bus, subjects.CREATE_MIGRATION) == sent
    kept = await migrate(world, migration_request(keep_source_running=True, existing="fail"))
    command = await last_command(world.bus, subjects.CREATE_MIGRATION)
    assert isinstance(command, CreateMigration) and command.operation_id == kept.id
    assert command.scale_down_source is False and command.options.existing == "fail"
    assert command.app_id == N.shop_app and command.target_cluster == N.west


async def test_a_retry_by_someone_out_of_scope_is_denied(world: World) -> None:
    rid = unique("m")
    op = await migrate(world, migration_request(request_id=rid), "admin")
    assert op.id == f"migrate-{rid}"
    # The same request id for an app the caller may move: the earlier operation (of the
    # shop app, out of this caller's scope) is not revealed.
    _, books_member = await issue(
        world.channel, world.tokens["admin"], "member", [N.east, N.west], ["books"]
    )
    books = migration_request(app_id=N.books_app, request_id=rid)
    error = await world_call(migrate, world, books, books_member)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "shop" in (error.details() or "")


async def world_call(call: Any, w: World, request: Any, secret: str) -> grpc.aio.AioRpcError:
    w.tokens["_adhoc"] = secret
    try:
        return await refused(call(w, request, "_adhoc"))
    finally:
        del w.tokens["_adhoc"]
