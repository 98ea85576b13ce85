"""Listing and cancelling operations (OperationService.ListOperations/CancelOperation).

Operations come from protection's KV `operations`, plus those the gateway accepted that
protection has not picked up yet (KV `requests`). A cancel is a command to protection,
which alone changes operations; the call waits briefly to report the outcome.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import grpc

from services.gateway import authz, paging
from services.gateway.errors import ApiError, invalid
from vessel.api.v1 import vessel_pb2 as pb
from vessel.bus.nats_port import KeyValue
from vessel.contracts import subjects
from vessel.contracts.operations import Operation
from vessel.contracts.protection import CancelOperation

if TYPE_CHECKING:  # the servicers import this module
    from services.gateway.servicers import Gateway

PHASES = ("New", "InProgress", "Completed", "PartiallyFailed", "Failed", "Canceled")
CANCEL_WAIT = 5.0


async def _read(kv: KeyValue, prefix: str = "") -> dict[str, Operation]:
    found: dict[str, Operation] = {}
    for key in await kv.keys():
        if not key.startswith(prefix):
            continue
        entry = await kv.get(key)
        if entry is not None and entry.value:
            op = Operation.model_validate_json(entry.value)
            found[op.id] = op
    return found


def _sort_key(op: Operation) -> str:
    return f"{op.created.isoformat()}|{op.id}"


async def list_operations(
    gw: Gateway, request: pb.ListOperationsRequest
) -> tuple[list[Operation], str]:
    size = paging.page_size(request.page_size)
    if request.phase and request.phase not in PHASES:
        raise invalid([("phase", f"{request.phase!r} is not a phase ({', '.join(PHASES)})")])
    ops = await _read(gw.requests, "op.")
    ops.update(await _read(gw.operations))  # protection's record wins over the request
    principal = authz.current()
    matching = [
        op
        for op in ops.values()
        if (not request.kind or op.kind == request.kind)
        and (not request.phase or op.phase == request.phase)
        and (not request.app_id or op.app_id == request.app_id)
        and all(principal.covers(c, ns) for c, ns in authz.operation_targets(op))
    ]
    return paging.paginate(matching, _sort_key, size, request.page_token, newest_first=True)


def _ended(op: Operation) -> ApiError:
    return ApiError(
        grpc.StatusCode.FAILED_PRECONDITION,
        f"operation {op.id} already ended ({op.phase}); only running operations can be canceled",
        reason="OPERATION_ENDED",
        metadata={"phase": op.phase},
    )


async def cancel_operation(gw: Gateway, op: Operation, wait: float = CANCEL_WAIT) -> Operation:
    """Ask protection to cancel `op` (already checked to be in the caller's scope); the
    operation as it stands after at most `wait` seconds (Canceled, or still running)."""
    if op.done and op.phase != "Canceled":
        raise _ended(op)
    if op.phase == "Canceled":
        return op
    await gw.bus.publish(
        subjects.CANCEL_OPERATION,
        CancelOperation(operation_id=op.id, requested_by=authz.current().name),
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while loop.time() < deadline:
        current = await gw.operation(op.id)
        if current is not None and current.done:
            if current.phase != "Canceled":
                raise _ended(current)
            return current
        await asyncio.sleep(0.1)
    current = await gw.operation(op.id)
    return current or op
