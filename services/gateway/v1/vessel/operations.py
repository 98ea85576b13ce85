"""OperationService: reading, waiting for, listing and cancelling operations.

Operations come from protection's KV `operations`, plus those the gateway accepted that
protection has not picked up yet (the gateway's KV `requests`). A cancel is a command to
protection, which alone changes operations: it moves the operation to Canceling, cleans up,
then to Canceled; the call waits briefly to report the outcome.
"""

from __future__ import annotations

import asyncio

import grpc

from services.gateway.auth import authz
from services.gateway.context import GatewayContext
from services.gateway.errors import ApiError, RpcContext, guard, invalid, not_found
from services.gateway.reads import paging
from services.gateway.v1.vessel.convert import operation_message
from services.gateway.validation import IDENTIFIER
from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc
from vessel.contracts import subjects
from vessel.contracts.operations import Operation, Phase
from vessel.contracts.protection import CancelOperation

PHASES = tuple(phase.value for phase in Phase)
CANCEL_WAIT = 5.0


def _sort_key(op: Operation) -> str:
    return f"{op.created.isoformat()}|{op.id}"


async def list_operations(
    ctx: GatewayContext, request: pb.ListOperationsRequest
) -> tuple[list[Operation], str]:
    size = paging.page_size(request.page_size)
    if request.phase and request.phase not in PHASES:
        raise invalid([("phase", f"{request.phase!r} is not a phase ({', '.join(PHASES)})")])
    phase = Phase(request.phase) if request.phase else None
    ops = await ctx.requests.every_submitted()
    for key in await ctx.operations.keys():  # protection's record wins over the request
        entry = await ctx.operations.get(key)
        if entry is not None and entry.value:
            op = Operation.model_validate_json(entry.value)
            ops[op.id] = op
    principal = authz.current()
    matching = [
        op
        for op in ops.values()
        if (not request.kind or op.kind == request.kind)
        and (phase is None or op.phase == phase)
        and (not request.app_id or op.app_id == request.app_id)
        and all(principal.covers(c, ns) for c, ns in authz.operation_targets(op))
    ]
    return paging.paginate(matching, _sort_key, size, request.page_token, newest_first=True)


def _ended(op: Operation) -> ApiError:
    return ApiError(
        grpc.StatusCode.FAILED_PRECONDITION,
        f"operation {op.id} already ended ({op.phase}); only running operations can be canceled",
        reason="OPERATION_ENDED",
        metadata={"phase": op.phase.value},
    )


async def cancel_operation(
    ctx: GatewayContext, op: Operation, wait: float = CANCEL_WAIT
) -> Operation:
    """Ask protection to cancel `op` (already checked to be in the caller's scope); the
    operation as it stands after at most `wait` seconds: Canceled, or still Canceling or
    running. An operation already Canceling is asked again (protection finishes a cancel
    it finds under way), and waited for like any other."""
    if op.phase == Phase.CANCELED:
        return op
    if op.done:
        raise _ended(op)
    await ctx.bus.publish(
        subjects.CANCEL_OPERATION,
        CancelOperation(operation_id=op.id, requested_by=authz.current().name),
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while loop.time() < deadline:
        current = await ctx.operation(op.id)
        if current is not None and current.done:  # Canceling is not done: wait on
            if current.phase != Phase.CANCELED:
                raise _ended(current)
            return current
        await asyncio.sleep(0.1)
    current = await ctx.operation(op.id)
    return current or op


class OperationService(rpc.OperationServiceServicer):
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    async def _get(self, op_id: str) -> Operation:
        if not IDENTIFIER.match(op_id):
            raise invalid([("id", f"{op_id!r} is not an operation id")])
        op = await self.ctx.operation(op_id)
        if op is None:
            raise not_found(f"operation {op_id}")
        authz.require_scope(authz.current(), authz.operation_targets(op))
        return op

    @guard
    async def GetOperation(
        self, request: pb.GetOperationRequest, context: RpcContext
    ) -> pb.Operation:
        return operation_message(await self._get(request.id))

    @guard
    async def WaitOperation(
        self, request: pb.WaitOperationRequest, context: RpcContext
    ) -> pb.Operation:
        timeout = request.timeout_seconds or 60.0
        if not 0 < timeout <= 3600:
            raise invalid([("timeout_seconds", "must be in (0, 3600]")])
        deadline = asyncio.get_running_loop().time() + timeout
        op = await self._get(request.id)
        while not op.done and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.2)
            op = await self._get(request.id)
        return operation_message(op)

    @guard
    async def ListOperations(
        self, request: pb.ListOperationsRequest, context: RpcContext
    ) -> pb.ListOperationsResponse:
        ops, token = await list_operations(self.ctx, request)
        return pb.ListOperationsResponse(
            operations=[operation_message(op) for op in ops], next_page_token=token
        )

    @guard
    async def CancelOperation(
        self, request: pb.CancelOperationRequest, context: RpcContext
    ) -> pb.Operation:
        op = await self._get(request.id)
        return operation_message(await cancel_operation(self.ctx, op))
