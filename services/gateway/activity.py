"""The activity log as the gateway sees it: it records its own admin actions that have no
operation (tokens, backends, clusters) and serves `ListActivity`, newest first and only
what the caller's scope covers. Operations are recorded by protection (see
`vessel.contracts.activity`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import TypeAlias

import grpc

from services.gateway import authz, paging
from services.gateway.authz import Principal
from services.gateway.errors import guard
from services.gateway.token_service import TokenService
from services.gateway.tokens import TokenStore
from vessel.api.v1 import infra_pb2 as ipb
from vessel.api.v1 import infra_pb2_grpc as irpc
from vessel.api.v1 import tokens_pb2 as tpb
from vessel.bus.nats_port import KeyValue
from vessel.contracts.activity import ActivityRecord, activity_key
from vessel.contracts.operations import now

Context: TypeAlias = grpc.aio.ServicerContext


def visible(principal: Principal, record: ActivityRecord) -> bool:
    """Records naming no cluster are global: only unscoped callers see them."""
    if not record.cluster:
        return not principal.scoped
    if not record.namespaces:
        return principal.covers(record.cluster, None)
    return all(principal.covers(record.cluster, ns) for ns in record.namespaces)


def activity_message(record: ActivityRecord) -> ipb.Activity:
    message = ipb.Activity(
        id=record.id,
        identity=record.identity,
        action=record.action,
        target=record.target,
        operation_id=record.operation_id,
        outcome=record.outcome,
        message=record.message,
        cluster=record.cluster,
        namespaces=record.namespaces,
    )
    message.time.FromDatetime(record.time)
    return message


class ActivityLog:
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def record(
        self,
        action: str,
        target: str,
        outcome: str,
        *,
        message: str = "",
        cluster: str = "",
        namespaces: Iterable[str] = (),
        operation_id: str = "",
        identity: str | None = None,
    ) -> ActivityRecord:
        entry = ActivityRecord(
            id=operation_id or f"{action}-{uuid.uuid4().hex[:12]}",
            time=now(),
            identity=identity if identity is not None else authz.current().name,
            action=action,
            target=target,
            operation_id=operation_id,
            outcome=outcome,
            message=message,
            cluster=cluster,
            namespaces=list(namespaces),
        )
        await self.kv.put(activity_key(entry.time, entry.id), entry.model_dump_json().encode())
        return entry

    async def page(
        self, principal: Principal, request: ipb.ListActivityRequest
    ) -> tuple[list[ActivityRecord], str]:
        size = paging.page_size(request.page_size)
        after = paging.decode(request.page_token) if request.page_token else None
        found: list[tuple[str, ActivityRecord]] = []
        for key in sorted(await self.kv.keys(), reverse=True):
            if after is not None and key >= after:
                continue
            entry = await self.kv.get(key)
            if entry is None or not entry.value:
                continue
            record = ActivityRecord.model_validate_json(entry.value)
            if request.identity and record.identity != request.identity:
                continue
            if request.action and record.action != request.action:
                continue
            if not visible(principal, record):
                continue
            found.append((key, record))
            if len(found) > size:
                break
        page = found[:size]
        token = paging.encode(page[-1][0]) if len(found) > size else ""
        return [r for _, r in page], token


class ActivityService(irpc.ActivityServiceServicer):
    def __init__(self, log: ActivityLog) -> None:
        self.log = log

    @guard
    async def ListActivity(
        self, request: ipb.ListActivityRequest, context: Context
    ) -> ipb.ListActivityResponse:
        records, token = await self.log.page(authz.current(), request)
        return ipb.ListActivityResponse(
            records=[activity_message(r) for r in records], next_page_token=token
        )


class AuditedTokenService(TokenService):
    """TokenService whose issued and revoked tokens enter the activity log."""

    def __init__(self, store: TokenStore, log: ActivityLog) -> None:
        super().__init__(store)
        self.log = log

    async def CreateToken(
        self, request: tpb.CreateTokenRequest, context: Context
    ) -> tpb.CreateTokenResponse:
        reply = await super().CreateToken(request, context)
        target, role = f"token/{reply.token.name}", f"role {reply.token.role}"
        await self.log.record("token.create", target, "Succeeded", message=role)
        return reply

    async def RevokeToken(self, request: tpb.RevokeTokenRequest, context: Context) -> tpb.Token:
        revoked = await super().RevokeToken(request, context)
        await self.log.record("token.revoke", f"token/{revoked.name}", "Succeeded")
        return revoked
