"""Operation helpers every API uses: ids, the start of an operation, and the answer to a
retried request.

A request id makes a call idempotent: the operation (or admin command) is named after it,
so a retry finds what the first call did instead of doing it again. These sit below the
servicers of every proto file and above the context; the servicers of
`OperationService` (v1/vessel/operations.py) list, wait for and cancel operations.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from services.gateway.auth import authz
from services.gateway.context import GatewayContext
from vessel.contracts import subjects
from vessel.contracts.models import Payload
from vessel.contracts.operations import Operation


def new_id(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:12]}"


def operation_id(kind: str, request_id: str) -> str:
    """The command's operation id: derived from the request id, so a retry repeats it."""
    return f"{kind}-{request_id}" if request_id else new_id(kind)


async def earlier(ctx: GatewayContext, kind: str, request_id: str) -> Operation | None:
    """The operation a first call with this request id created (a retry answers with it)."""
    op = await ctx.operation(f"{kind}-{request_id}") if request_id else None
    if op is not None:
        authz.require_scope(authz.current(), authz.operation_targets(op))
    return op


async def submit(ctx: GatewayContext, op: Operation, request_id: str) -> tuple[Operation, bool]:
    """Record the request; (operation, False) when this request id was seen before (the
    caller must be allowed to see that earlier operation)."""
    if request_id:
        op = op.model_copy(update={"id": f"{op.kind}-{request_id}"})
    if await ctx.requests.submit(op):
        return op, True
    existing = await ctx.operation(op.id)
    assert existing is not None
    authz.require_scope(authz.current(), authz.operation_targets(existing))
    return existing, False


async def start(
    ctx: GatewayContext,
    op: Operation,
    request_id: str,
    message: subjects.Message,
    command: Callable[[Operation], Payload],
) -> Operation:
    """Submit `op` and send `command(op)` on `message`, unless this request id was seen
    before (then no command: the earlier operation is the answer)."""
    op, fresh = await submit(ctx, op, request_id)
    if fresh:
        await ctx.bus.publish(message, command(op))
    return op


async def first_time(ctx: GatewayContext, op_id: str, what: str) -> bool:
    """True for the first request with this admin command's operation id (later ones are
    retries); `what` is kept for them."""
    return await ctx.requests.remember("admin", op_id, what.encode())
