"""Every role (and scope) against every RPC of the gateway, over TLS.

The world: clusters EAST and WEST (ids unique to this run), apps in namespaces `shop` and
`books`, a backup of EAST/shop in the bucket, a finished backup operation of EAST/shop.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from services.gateway.main import build_gateway
from tests.gateway.harness import (
    ADMIN_ENV,
    ADMIN_TOKEN,
    Pki,
    Running,
    app_record,
    bearer,
    issue,
    make_settings,
    unique,
)
from tests.support import require
from vessel.api.v1 import tokens_pb2 as tpb
from vessel.api.v1 import tokens_pb2_grpc as trpc
from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc
from vessel.bus.nats_port import Bus
from vessel.contracts.events import AppRecord
from vessel.contracts.operations import Operation, Phase
from vessel.objectstore.minio_port import MinioStore
from vessel_dev.rig.processes import NatsServer, S3Server

RUN = uuid.uuid4().hex[:6]
EAST, WEST = f"east-{RUN}", f"west-{RUN}"
SHOP_APP, BOOKS_APP, WEST_APP = f"{EAST}.shop.web", f"{EAST}.books.api", f"{WEST}.shop.web"
SPREAD_APP = f"{EAST}.shop.spread"  # a user-defined app reading from shop and books
BACKUP = f"bk-{RUN}"
SPREAD_BACKUP = f"bk-spread-{RUN}"  # of an app reading from shop and books
OPERATION = f"backup-op-{RUN}"
SCOPE_CLUSTERS, SCOPE_NAMESPACES = [EAST, WEST], ["shop", "shop-copy"]
USER_APPS = "namespaces" in AppRecord.model_fields


@dataclass
class World:
    gateway: Running
    channel: grpc.aio.Channel
    bus: Bus
    tokens: dict[str, str | None] = field(default_factory=dict)
    """principal label -> bearer token (None: no token at all)."""


@pytest.fixture(scope="module")
async def world(
    nats_server: NatsServer, s3_server: S3Server, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    patch = pytest.MonkeyPatch()
    patch.setenv("VESSEL_TEST_GW_S3_ACCESS", s3_server.access_key)
    patch.setenv("VESSEL_TEST_GW_S3_SECRET", s3_server.secret_key)
    patch.delenv("VESSEL_CONFIG", raising=False)
    store = MinioStore(s3_server.endpoint, f"gw-{RUN}", s3_server.access_key, s3_server.secret_key)
    store.ensure_bucket()
    store.put_bytes(
        f"backups/{BACKUP}/backup.json",
        json.dumps(
            {"backup_id": BACKUP, "app_id": SHOP_APP, "cluster": EAST, "namespace": "shop"}
        ).encode(),
    )
    spread = {"cluster": EAST, "namespace": "shop", "namespaces": ["shop", "books"]}
    store.put_bytes(f"backups/{SPREAD_BACKUP}/backup.json", json.dumps(spread).encode())
    bus = Bus(source="/clusters/test/gateway-roles")
    await bus.connect(nats_server.url, name="gateway-roles")
    inventory = await bus.kv("inventory")
    apps = [
        app_record(EAST, "shop", "web"),
        app_record(EAST, "books", "api"),
        app_record(WEST, "shop", "web"),
    ]
    if USER_APPS:
        apps.append(app_record(EAST, "shop", "spread", namespaces=["shop", "books"]))
    for app in apps:
        await inventory.put(f"apps.{app.id}", app.model_dump_json().encode())
    operations = await bus.kv("operations")
    done = Operation(id=OPERATION, kind="backup", app_id=SHOP_APP, bucket="default")
    done = done.model_copy(update={"phase": Phase.COMPLETED})
    await operations.put(OPERATION, done.model_dump_json().encode())

    settings = make_settings(
        tls={"cert_file": str(pki.server_cert), "key_file": str(pki.server_key)},
        clusters=[EAST, WEST],
        buckets=[
            {
                "name": "default",
                "endpoint": s3_server.endpoint,
                "bucket": f"gw-{RUN}",
                "access_key_env": "VESSEL_TEST_GW_S3_ACCESS",
                "secret_key_env": "VESSEL_TEST_GW_S3_SECRET",
            }
        ],
    )
    built = await build_gateway(settings, bus, environ={ADMIN_ENV: ADMIN_TOKEN})
    await built.start()
    gateway = Running(built, pki)
    channel = gateway.channel()
    w = World(gateway, channel, bus)
    w.tokens["none"] = None
    w.tokens["bogus"] = "vsl_nobody_" + "x" * 43
    w.tokens["bootstrap"] = ADMIN_TOKEN
    _, w.tokens["admin"] = await issue(channel, ADMIN_TOKEN, "admin")
    for role in ("owner", "member", "viewer"):
        _, w.tokens[role] = await issue(
            channel, ADMIN_TOKEN, role, SCOPE_CLUSTERS, SCOPE_NAMESPACES
        )
    _, w.tokens["member-books"] = await issue(
        channel, ADMIN_TOKEN, "member", clusters=[EAST], namespaces=["books"]
    )
    _, w.tokens["member-east"] = await issue(channel, ADMIN_TOKEN, "member", clusters=[EAST])
    try:
        yield w
    finally:
        tokens = await bus.kv("tokens")
        for key in await tokens.keys():
            await tokens.delete(key)
        await gateway.close()
        await bus.close()
        patch.undo()


Call = Callable[[World, str | None], Awaitable[Any]]


async def list_apps(w: World, token: str | None) -> Any:
    return await rpc.AppServiceStub(w.channel).ListApps(
        pb.ListAppsRequest(), metadata=bearer(token)
    )


async def get_app(w: World, token: str | None) -> Any:
    return await rpc.AppServiceStub(w.channel).GetApp(
        pb.GetAppRequest(id=SHOP_APP), metadata=bearer(token)
    )


async def create_backup(w: World, token: str | None) -> Any:
    return await rpc.BackupServiceStub(w.channel).CreateBackup(
        pb.CreateBackupRequest(app_id=SHOP_APP, bucket="default", request_id=unique("r")),
        metadata=bearer(token),
    )


async def create_restore(w: World, token: str | None) -> Any:
    return await rpc.RestoreServiceStub(w.channel).CreateRestore(
        pb.CreateRestoreRequest(
            backup_id=BACKUP,
            bucket="default",
            target_cluster=WEST,
            namespace_mapping={"shop": "shop-copy"},
            request_id=unique("r"),
        ),
        metadata=bearer(token),
    )


async def get_operation(w: World, token: str | None) -> Any:
    return await rpc.OperationServiceStub(w.channel).GetOperation(
        pb.GetOperationRequest(id=OPERATION), metadata=bearer(token)
    )


async def wait_operation(w: World, token: str | None) -> Any:
    return await rpc.OperationServiceStub(w.channel).WaitOperation(
        pb.WaitOperationRequest(id=OPERATION, timeout_seconds=5), metadata=bearer(token)
    )


async def create_token(w: World, token: str | None) -> Any:
    return await trpc.TokenServiceStub(w.channel).CreateToken(
        tpb.CreateTokenRequest(name=unique("made"), role="viewer"), metadata=bearer(token)
    )


async def list_tokens(w: World, token: str | None) -> Any:
    return await trpc.TokenServiceStub(w.channel).ListTokens(
        tpb.ListTokensRequest(), metadata=bearer(token)
    )


async def revoke_token(w: World, token: str | None) -> Any:
    victim, _ = await issue(w.channel, ADMIN_TOKEN, "viewer")
    return await trpc.TokenServiceStub(w.channel).RevokeToken(
        tpb.RevokeTokenRequest(name=victim), metadata=bearer(token)
    )


CALLS: dict[str, Call] = {
    "ListApps": list_apps,
    "GetApp": get_app,
    "CreateBackup": create_backup,
    "CreateRestore": create_restore,
    "GetOperation": get_operation,
    "WaitOperation": wait_operation,
    "CreateToken": create_token,
    "ListTokens": list_tokens,
    "RevokeToken": revoke_token,
}
READS = {"ListApps", "GetApp", "GetOperation", "WaitOperation"}
WRITES = {"CreateBackup", "CreateRestore"}
TOKENS = {"CreateToken", "ListTokens", "RevokeToken"}
OK, ROLE, SCOPE_DENIED, UNAUTH = "ok", "MISSING_ROLE", "OUT_OF_SCOPE", "UNAUTHENTICATED"


def expected(principal: str, call: str) -> str:
    if principal in ("none", "bogus"):
        return UNAUTH
    if principal in ("bootstrap", "admin"):
        return OK
    if call in TOKENS:
        return ROLE
    if principal == "viewer":
        return OK if call in READS else ROLE
    if principal in ("owner", "member"):
        return OK
    if principal == "member-books":  # EAST/books only: the shop app and its backup are out
        return OK if call == "ListApps" else SCOPE_DENIED
    if principal == "member-east":  # all of EAST, nothing of WEST: the restore targets WEST
        return SCOPE_DENIED if call == "CreateRestore" else OK
    raise AssertionError(principal)


PRINCIPALS = ["none", "bogus", "bootstrap", "admin", "owner", "member", "viewer"]
PRINCIPALS += ["member-books", "member-east"]


def reason(error: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(error)
    for detail in status.details if status else []:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.reason)
    return ""


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("principal", PRINCIPALS)
async def test_role_and_scope_matrix(world: World, principal: str, call: str) -> None:
    want = expected(principal, call)
    try:
        await CALLS[call](world, world.tokens[principal])
    except grpc.aio.AioRpcError as exc:
        got = {
            grpc.StatusCode.UNAUTHENTICATED: UNAUTH,
            grpc.StatusCode.PERMISSION_DENIED: reason(exc),
        }.get(exc.code(), f"{exc.code().name}: {exc.details()}")
        assert got == want, exc.details()
        if want == ROLE:
            needed = "admin" if call in TOKENS else "member"
            assert f"needs role {needed}" in (exc.details() or "")
        return
    assert want == OK, f"{principal} {call} succeeded, expected {want}"


async def test_list_apps_returns_only_apps_wholly_in_scope(world: World) -> None:
    async def ids(principal: str) -> set[str]:
        reply = await list_apps(world, world.tokens[principal])
        return {a.id for a in reply.apps if a.cluster in (EAST, WEST)}

    everything = {SHOP_APP, BOOKS_APP, WEST_APP} | ({SPREAD_APP} if USER_APPS else set())
    assert await ids("admin") == everything
    assert await ids("viewer") == {SHOP_APP, WEST_APP}  # spread reads books: out of scope
    assert await ids("member-books") == {BOOKS_APP}
    assert await ids("member-east") == everything - {WEST_APP}
    reply = await list_apps(world, world.tokens["member-books"])
    assert {a.cluster for a in reply.apps} == {EAST}  # nothing of other tests' clusters


async def test_an_app_spanning_namespaces_needs_all_of_them(world: World) -> None:
    require(None if USER_APPS else "AppRecord has no `namespaces` (user-defined apps)")
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await rpc.AppServiceStub(world.channel).GetApp(
            pb.GetAppRequest(id=SPREAD_APP), metadata=bearer(world.tokens["member"])
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "'books'" in (denied.value.details() or "")
    app = await rpc.AppServiceStub(world.channel).GetApp(
        pb.GetAppRequest(id=SPREAD_APP), metadata=bearer(world.tokens["member-east"])
    )
    assert app.id == SPREAD_APP


async def restore(world: World, token: str, mapping: dict[str, str], backup: str = BACKUP) -> Any:
    return await rpc.RestoreServiceStub(world.channel).CreateRestore(
        pb.CreateRestoreRequest(
            backup_id=backup, bucket="default", target_cluster=WEST, namespace_mapping=mapping
        ),
        metadata=bearer(token),
    )


async def test_restore_needs_the_source_and_every_namespace_it_writes(world: World) -> None:
    _, shop = await issue(
        world.channel, ADMIN_TOKEN, "member", clusters=[EAST, WEST], namespaces=["shop"]
    )
    op = await restore(world, shop, {})  # unmapped: written to WEST/shop, in scope
    assert op.target_cluster == WEST
    for mapping, where in (({"shop": "elsewhere"}, "'elsewhere'"), ({"x": "y"}, "'y'")):
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await restore(world, shop, mapping)
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED, mapping
        assert where in (denied.value.details() or "")
    _, copy_only = await issue(
        world.channel, ADMIN_TOKEN, "member", clusters=[WEST], namespaces=["shop-copy"]
    )
    with pytest.raises(grpc.aio.AioRpcError) as source:  # may write there, may not read EAST
        await restore(world, copy_only, {"shop": "shop-copy"})
    assert source.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert f"cluster {EAST!r}" in (source.value.details() or "")
    assert reason(source.value) == SCOPE_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as spread:  # the backup also read EAST/books
        await restore(world, shop, {}, SPREAD_BACKUP)
    assert "'books'" in (spread.value.details() or "")
    _, both = await issue(world.channel, ADMIN_TOKEN, "member", clusters=[EAST, WEST])
    op = await restore(world, both, {}, SPREAD_BACKUP)
    assert op.id.startswith("restore-")


async def test_a_request_id_does_not_reveal_another_scope_s_operation(world: World) -> None:
    request_id = unique("shared")
    mine = await rpc.BackupServiceStub(world.channel).CreateBackup(
        pb.CreateBackupRequest(app_id=SHOP_APP, bucket="default", request_id=request_id),
        metadata=bearer(world.tokens["member"]),
    )
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await rpc.BackupServiceStub(world.channel).CreateBackup(
            pb.CreateBackupRequest(app_id=BOOKS_APP, bucket="default", request_id=request_id),
            metadata=bearer(world.tokens["member-books"]),
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    again = await rpc.BackupServiceStub(world.channel).CreateBackup(
        pb.CreateBackupRequest(app_id=SHOP_APP, bucket="default", request_id=request_id),
        metadata=bearer(world.tokens["member"]),
    )
    assert again.id == mine.id


async def test_denials_name_the_missing_role_or_scope(world: World) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as role:
        await create_backup(world, world.tokens["viewer"])
    text = role.value.details() or ""
    assert "role viewer" in text and "CreateBackup needs role member" in text
    with pytest.raises(grpc.aio.AioRpcError) as scope:
        await get_app(world, world.tokens["member-books"])
    text = scope.value.details() or ""
    assert f"cluster {EAST!r} namespace 'shop'" in text and "namespaces books" in text


async def test_an_unknown_app_out_of_scope_is_denied_not_revealed(world: World) -> None:
    for app_id, code in (
        (f"{EAST}.shop.ghost", grpc.StatusCode.PERMISSION_DENIED),  # out of scope
        (f"{EAST}.books.ghost", grpc.StatusCode.NOT_FOUND),  # in scope: the honest answer
    ):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await rpc.AppServiceStub(world.channel).GetApp(
                pb.GetAppRequest(id=app_id), metadata=bearer(world.tokens["member-books"])
            )
        assert error.value.code() == code, app_id
