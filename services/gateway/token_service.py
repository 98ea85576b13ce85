"""TokenService: admins issue, list and revoke API tokens (the policy admits admins only)."""

from __future__ import annotations

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from services.gateway import authz
from services.gateway.authz import Role
from services.gateway.errors import ApiError, guard, invalid, not_found
from services.gateway.tokens import NAME, RESERVED, TokenRecord, TokenStore
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
    def __init__(self, store: TokenStore) -> None:
        self.store = store

    @guard
    async def CreateToken(
        self, request: tpb.CreateTokenRequest, context: grpc.aio.ServicerContext
    ) -> tpb.CreateTokenResponse:
        role = _check(request)
        try:
            record, secret = await self.store.create(
                request.name,
                role,
                list(request.clusters),
                list(request.namespaces),
                request.ttl_seconds,
                created_by=authz.current().name,
            )
        except KeyExistsError:
            raise ApiError(
                grpc.StatusCode.ALREADY_EXISTS,
                f"token {request.name!r} exists (revoke it first to reuse the name)",
            ) from None
        return tpb.CreateTokenResponse(token=token_message(record), secret=secret)

    @guard
    async def ListTokens(
        self, request: tpb.ListTokensRequest, context: grpc.aio.ServicerContext
    ) -> tpb.ListTokensResponse:
        return tpb.ListTokensResponse(tokens=[token_message(r) for r in await self.store.list()])

    @guard
    async def RevokeToken(
        self, request: tpb.RevokeTokenRequest, context: grpc.aio.ServicerContext
    ) -> tpb.Token:
        if not NAME.match(request.name):
            raise invalid([("name", f"{request.name!r} is not a token name")])
        record = await self.store.revoke(request.name)
        if record is None:
            raise not_found(f"token {request.name}")
        return token_message(record)
