"""ActivityService: the activity log (KV `activity`), newest first and only what the
caller's scope covers. Protection records operations; the gateway its own admin actions
that have no operation (tokens, backends, clusters; `state.ActivityLog`)."""

from __future__ import annotations

from services.gateway.auth import authz
from services.gateway.auth.authz import Principal
from services.gateway.context import GatewayContext
from services.gateway.errors import RpcContext, guard
from services.gateway.reads import paging
from services.gateway.state import ActivityLog
from vessel.api.v1 import infra_pb2 as ipb
from vessel.api.v1 import infra_pb2_grpc as irpc
from vessel.contracts.activity import ActivityRecord


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


async def page(
    log: ActivityLog, principal: Principal, request: ipb.ListActivityRequest
) -> tuple[list[ActivityRecord], str]:
    """One page of the records the request asks for and the principal may see."""
    size = paging.page_size(request.page_size)
    after = paging.decode(request.page_token) if request.page_token else None
    found: list[tuple[str, ActivityRecord]] = []
    async for key, record in log.newest_first(before=after):
        if request.identity and record.identity != request.identity:
            continue
        if request.action and record.action != request.action:
            continue
        if not visible(principal, record):
            continue
        found.append((key, record))
        if len(found) > size:
            break
    kept = found[:size]
    token = paging.encode(kept[-1][0]) if len(found) > size else ""
    return [r for _, r in kept], token


class ActivityService(irpc.ActivityServiceServicer):
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    @guard
    async def ListActivity(
        self, request: ipb.ListActivityRequest, context: RpcContext
    ) -> ipb.ListActivityResponse:
        records, token = await page(self.ctx.activity, authz.current(), request)
        return ipb.ListActivityResponse(
            records=[activity_message(r) for r in records], next_page_token=token
        )
