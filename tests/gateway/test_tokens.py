"""Token lifecycle, hashed storage, bootstrap admin, open mode, and what needs no token."""

from __future__ import annotations

import asyncio
import hashlib
import logging

import grpc
import pytest
from google.protobuf import empty_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.gateway.auth import policy
from services.gateway.auth.tokens import Authenticator
from services.gateway.main import build_gateway
from services.gateway.server import log_security
from services.gateway.state import TokenStore
from tests.gateway.harness import (
    ADMIN_ENV,
    ADMIN_TOKEN,
    Starter,
    bearer,
    issue,
    make_settings,
    purge_tokens,
    unique,
)
from vessel.api.v1 import tokens_pb2 as tpb
from vessel.api.v1 import tokens_pb2_grpc as trpc
from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc
from vessel.bus.nats_port import Bus
from vessel.config import ConfigError


async def list_apps(channel: grpc.aio.Channel, token: str | None) -> pb.ListAppsResponse:
    reply: pb.ListAppsResponse = await rpc.AppServiceStub(channel).ListApps(
        pb.ListAppsRequest(), metadata=bearer(token)
    )
    return reply


async def code_of(call: object) -> grpc.StatusCode:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def test_token_lifecycle_secret_once_list_hides_it_revoke_ends_it(
    start_gateway: Starter,
) -> None:
    gw = await start_gateway()
    channel = gw.channel()
    tokens = trpc.TokenServiceStub(channel)
    name = unique("ci")
    created = await tokens.CreateToken(
        tpb.CreateTokenRequest(name=name, role="viewer", clusters=["east"], namespaces=["shop"]),
        metadata=bearer(ADMIN_TOKEN),
    )
    secret = created.secret
    assert secret.startswith(f"vsl_{name}_") and len(secret) > 40
    assert created.token.role == "viewer" and list(created.token.clusters) == ["east"]
    assert created.token.created_by == "bootstrap-admin"
    assert not created.token.HasField("expires")
    assert await code_of(list_apps(channel, secret)) == grpc.StatusCode.OK

    listed = await tokens.ListTokens(tpb.ListTokensRequest(), metadata=bearer(ADMIN_TOKEN))
    mine = [t for t in listed.tokens if t.name == name]
    assert len(mine) == 1 and list(mine[0].namespaces) == ["shop"]
    wire = listed.SerializeToString()
    assert secret.encode() not in wire and secret.split("_", 2)[2].encode() not in wire

    with pytest.raises(grpc.aio.AioRpcError) as again:
        await tokens.CreateToken(
            tpb.CreateTokenRequest(name=name, role="admin"), metadata=bearer(ADMIN_TOKEN)
        )
    assert again.value.code() == grpc.StatusCode.ALREADY_EXISTS

    revoked = await tokens.RevokeToken(
        tpb.RevokeTokenRequest(name=name), metadata=bearer(ADMIN_TOKEN)
    )
    assert revoked.name == name
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await list_apps(channel, secret)
    assert gone.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "unknown or revoked" in (gone.value.details() or "")
    listed = await tokens.ListTokens(tpb.ListTokensRequest(), metadata=bearer(ADMIN_TOKEN))
    assert name not in {t.name for t in listed.tokens}
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await tokens.RevokeToken(tpb.RevokeTokenRequest(name=name), metadata=bearer(ADMIN_TOKEN))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    # The name is free again; the old secret stays dead.
    _, fresh = await issue(channel, ADMIN_TOKEN, "viewer", name=name)
    assert await code_of(list_apps(channel, fresh)) == grpc.StatusCode.OK
    assert await code_of(list_apps(channel, secret)) == grpc.StatusCode.UNAUTHENTICATED


async def test_an_expired_token_is_unauthenticated(start_gateway: Starter) -> None:
    gw = await start_gateway()
    channel = gw.channel()
    name, secret = await issue(channel, ADMIN_TOKEN, "viewer", ttl=1)
    listed = await trpc.TokenServiceStub(channel).ListTokens(
        tpb.ListTokensRequest(), metadata=bearer(ADMIN_TOKEN)
    )
    (token,) = [t for t in listed.tokens if t.name == name]
    assert token.expires.seconds - token.created.seconds in (0, 1, 2)
    assert await code_of(list_apps(channel, secret)) == grpc.StatusCode.OK
    await asyncio.sleep(1.1)
    with pytest.raises(grpc.aio.AioRpcError) as expired:
        await list_apps(channel, secret)
    assert expired.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "expired" in (expired.value.details() or "")


async def test_only_the_hash_of_a_secret_is_stored(start_gateway: Starter, bus: Bus) -> None:
    gw = await start_gateway()
    channel = gw.channel()
    secrets_ = [(await issue(channel, ADMIN_TOKEN, role))[1] for role in ("viewer", "admin")]
    info = await bus.js.stream_info("KV_tokens")
    stored = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            stored.append((await bus.js.get_msg("KV_tokens", seq)).data or b"")
        except Exception:  # purged or deleted sequence
            continue
    blob = b"\n".join(stored)
    for secret in secrets_:
        raw = secret.split("_", 2)[2]
        assert raw.encode() not in blob and secret.encode() not in blob
        assert hashlib.sha256(raw.encode()).hexdigest().encode() in blob
    assert ADMIN_TOKEN.encode() not in blob


async def test_bad_token_requests_are_invalid(start_gateway: Starter) -> None:
    gw = await start_gateway()
    tokens = trpc.TokenServiceStub(gw.channel())
    cases = [
        (tpb.CreateTokenRequest(name="Bad_Name", role="viewer"), "name"),
        (tpb.CreateTokenRequest(name="bootstrap-admin", role="admin"), "name"),
        (tpb.CreateTokenRequest(name="anonymous", role="viewer"), "name"),
        (tpb.CreateTokenRequest(name=unique("x"), role="root"), "role"),
        (tpb.CreateTokenRequest(name=unique("x"), role="admin", clusters=["east"]), "role"),
        (tpb.CreateTokenRequest(name=unique("x"), role="viewer", namespaces=["A B"]), "namespaces"),
        (tpb.CreateTokenRequest(name=unique("x"), role="viewer", ttl_seconds=-1), "ttl_seconds"),
    ]
    for request, field in cases:
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await tokens.CreateToken(request, metadata=bearer(ADMIN_TOKEN))
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT, request
        assert field in (bad.value.details() or ""), (request, bad.value.details())


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer",
        f"Basic {ADMIN_TOKEN}",
        f"Bearer {ADMIN_TOKEN}x",
        f"Bearer {ADMIN_TOKEN[:-1]}",
        "Bearer vsl_nobody_abc",
        "Bearer vsl_",
    ],
    ids=["none", "bare", "basic", "longer", "shorter", "unknown", "empty-name"],
)
async def test_wrong_credentials_are_unauthenticated(
    start_gateway: Starter, authorization: str | None
) -> None:
    gw = await start_gateway()
    metadata = [("authorization", authorization)] if authorization else None
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await rpc.AppServiceStub(gw.channel()).ListApps(pb.ListAppsRequest(), metadata=metadata)
    assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED
    ok = await rpc.AppServiceStub(gw.channel()).ListApps(
        pb.ListAppsRequest(), metadata=[("authorization", f"bearer  {ADMIN_TOKEN} ")]
    )
    assert ok is not None


async def test_open_mode_only_while_nothing_is_configured(
    start_gateway: Starter, bus: Bus, caplog: pytest.LogCaptureFixture
) -> None:
    await purge_tokens(bus)
    settings = make_settings(required=False)
    gw = await start_gateway(settings, admin=None)
    with caplog.at_level(logging.INFO, logger="vessel.gateway"):
        await log_security(gw.built, settings)
    assert "gateway is OPEN" in caplog.text and "PLAINTEXT" in caplog.text
    channel = gw.channel()
    assert await code_of(list_apps(channel, None)) == grpc.StatusCode.OK
    name, secret = await issue(channel, "", "admin")  # the anonymous admin bootstraps
    listed = await trpc.TokenServiceStub(channel).ListTokens(
        tpb.ListTokensRequest(), metadata=bearer(secret)
    )
    assert [t.created_by for t in listed.tokens if t.name == name] == ["anonymous"]
    assert await code_of(list_apps(channel, None)) == grpc.StatusCode.UNAUTHENTICATED
    assert await code_of(list_apps(channel, secret)) == grpc.StatusCode.OK
    await purge_tokens(bus)
    with_admin = await start_gateway(settings, admin=ADMIN_TOKEN)
    assert await code_of(list_apps(with_admin.channel(), None)) == grpc.StatusCode.UNAUTHENTICATED


async def test_required_auth_without_credentials_refuses_every_call(
    start_gateway: Starter, bus: Bus, caplog: pytest.LogCaptureFixture
) -> None:
    await purge_tokens(bus)
    settings = make_settings(required=True)
    gw = await start_gateway(settings, admin=None)
    with caplog.at_level(logging.INFO, logger="vessel.gateway"):
        await log_security(gw.built, settings)
    assert "every call will be refused" in caplog.text
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await list_apps(gw.channel(), None)
    assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "missing bearer token" in (denied.value.details() or "")


async def test_unsafe_auth_settings_stop_the_gateway(bus: Bus) -> None:
    store = TokenStore(await bus.kv("tokens"))
    with pytest.raises(ConfigError, match="loopback"):
        Authenticator(make_settings(required=False, listen="0.0.0.0:0"), store, {})
    with pytest.raises(ConfigError, match="shorter than 24"):
        Authenticator(make_settings(), store, {ADMIN_ENV: "short-secret"})
    with pytest.raises(ConfigError, match="loopback"):
        await build_gateway(make_settings(required=False, listen="10.0.0.1:0"), bus, environ={})
    Authenticator(make_settings(required=False, listen="[::1]:0"), store, {})


async def test_health_and_reflection_need_no_token(start_gateway: Starter, bus: Bus) -> None:
    await purge_tokens(bus)
    gw = await start_gateway(make_settings(required=True), admin=ADMIN_TOKEN)
    channel = gw.channel()
    reply = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service="vessel.api.v1.TokenService")
    )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    call = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo()
    await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
    await call.done_writing()
    services = set()
    async for response in call:
        services |= {s.name for s in response.list_services_response.service}
    assert {"vessel.api.v1.TokenService", "vessel.api.v1.AppService"} <= services
    assert await code_of(list_apps(channel, None)) == grpc.StatusCode.UNAUTHENTICATED


def test_every_rpc_declares_a_policy() -> None:
    assert set(policy.all_methods()) == set(policy.POLICIES)
    assert len(policy.POLICIES) >= 9


async def test_an_rpc_without_policy_is_denied(start_gateway: Starter) -> None:
    gw = await start_gateway()
    handler = grpc.method_handlers_generic_handler(
        "vessel.api.v1.Unlisted",
        {
            "Do": grpc.unary_unary_rpc_method_handler(
                _echo,
                request_deserializer=empty_pb2.Empty.FromString,
                response_serializer=empty_pb2.Empty.SerializeToString,
            )
        },
    )
    server = grpc.aio.server(interceptors=[policy.AuthInterceptor(gw.built.authenticator)])
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary(
                "/vessel.api.v1.Unlisted/Do",
                request_serializer=empty_pb2.Empty.SerializeToString,
                response_deserializer=empty_pb2.Empty.FromString,
            )
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await call(empty_pb2.Empty(), metadata=bearer(ADMIN_TOKEN))
            assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert "no access policy" in (denied.value.details() or "")
            with pytest.raises(grpc.aio.AioRpcError) as anonymous:
                await call(empty_pb2.Empty())
            assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await server.stop(None)


async def _echo(request: empty_pb2.Empty, context: grpc.aio.ServicerContext) -> empty_pb2.Empty:
    return request
