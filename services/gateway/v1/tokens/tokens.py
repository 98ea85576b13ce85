"""TokenService: admins issue, list and revoke API tokens (the policy admits admins only);
issued and revoked tokens enter the activity log."""

from __future__ import annotations

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from services.gateway.auth import authz, tokens
from services.gateway.auth.authz import Role
from services.gateway.auth.tokens import NAME, RESERVED
from services.gateway.context import GatewayContext
from services.gateway.errors import ApiError, RpcContext, guard, invalid, not_found
from services.gateway.state import TokenRecord
from services.gateway.validation import DNS_LABEL
from vessel.api.v1 import tokens_pb2 as tpb
from vessel.api.v1 import tokens_pb2_grpc as trpc
from vessel.bus.errors import KeyExistsError

MAX_TTL_SECONDS = 10 * 366 * 24 * 3600


def token_message(record: TokenRecord) -> tpb.Token:
    created = Timestamp()
    created.FromDatetime(record.created)
    message = tpb.Token(
        name=record.name,
        role=record.role,
        clusters=record.clusters,
        namespaces=record.namespaces,
        created=created,
        created_by=record.created_by,
    )
    if record.expires is not None:
        message.expires.FromDatetime(record.expires)
    return message


def _check(request: tpb.CreateTokenRequest) -> Role:
    violations: list[tuple[str, str]] = []
    if not request.name:
        violations.append(("name", "is required"))
    elif not NAME.match(request.name):
        violations.append(("name", f"{request.name!r} is not a DNS label"))
    elif request.name in RESERVED:
        violations.append(("name", f"{request.name!r} is reserved"))
    role = Role.parse(request.role)
    if role is None:
        known = ", ".join(r.label for r in Role)
        violations.append(("role", f"{request.role!r} is not a role ({known})"))
    for field, values in (("clusters", request.clusters), ("namespaces", request.namespaces)):
        for i, value in enumerate(values):
            if not DNS_LABEL.match(value):
                violations.append((f"{field}[{i}]", f"{value!r} is not a DNS label"))
    if role is Role.ADMIN and (request.clusters or request.namespaces):
        violations.append(("role", "admin tokens are not scoped: leave clusters/namespaces out"))
    if not 0 <= request.ttl_seconds <= MAX_TTL_SECONDS:
        violations.append(("ttl_seconds", f"must be in [0, {MAX_TTL_SECONDS}] (0: never)"))
    if violations or role is None:
        raise invalid(violations)
    return role


class TokenService(trpc.TokenServiceServicer):
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    @guard
    async def CreateToken(
        self, request: tpb.CreateTokenRequest, context: RpcContext
    ) -> tpb.CreateTokenResponse:
        role = _check(request)
        caller = authz.current().name
        try:
            record, secret = await tokens.issue(
                self.ctx.tokens,
                request.name,
                role,
                list(request.clusters),
                list(request.namespaces),
                request.ttl_seconds,
                created_by=caller,
            )
        except KeyExistsError:
            raise ApiError(
                grpc.StatusCode.ALREADY_EXISTS,
                f"token {request.name!r} exists (revoke it first to reuse the name)",
            ) from None
        target, role_text = f"token/{record.name}", f"role {record.role}"
        await self.ctx.activity.record(
            "token.create", target, "Succeeded", identity=caller, message=role_text
        )
        return tpb.CreateTokenResponse(token=token_message(record), secret=secret)

    @guard
    async def ListTokens(
        self, request: tpb.ListTokensRequest, context: RpcContext
    ) -> tpb.ListTokensResponse:
        records = await self.ctx.tokens.list()
        return tpb.ListTokensResponse(tokens=[token_message(r) for r in records])

    @guard
    async def RevokeToken(self, request: tpb.RevokeTokenRequest, context: RpcContext) -> tpb.Token:
        if not NAME.match(request.name):
            raise invalid([("name", f"{request.name!r} is not a token name")])
        record = await self.ctx.tokens.revoke(request.name)
        if record is None:
            raise not_found(f"token {request.name}")
        await self.ctx.activity.record(
            "token.revoke", f"token/{record.name}", "Succeeded", identity=authz.current().name
        )
        return token_message(record)
