"""ProgressService: live progress of an operation, streamed: the operation whenever it
changes, and each `mover.transfer.progress` event of its transfers, until it ends.

The operation is polled from KV (its single writer is protection); progress comes from
the events stream, replayed from shortly before the call so that an update published
while the watch starts is not lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError

from services.gateway.auth import authz
from services.gateway.context import GatewayContext
from services.gateway.errors import ApiError, RpcContext, invalid, not_found
from services.gateway.v1.protection.convert import progress_message
from services.gateway.v1.vessel.convert import operation_message
from services.gateway.validation import IDENTIFIER
from vessel.api.v1 import protection_pb2 as ppb
from vessel.api.v1 import protection_pb2_grpc as prpc
from vessel.contracts import subjects
from vessel.contracts.events import TransferProgress
from vessel.contracts.operations import Operation

POLL_SECONDS = 0.25
REPLAY = timedelta(seconds=2)
MAX_WATCH_SECONDS = 86_400.0
PROGRESS_EVENTS = subjects.TRANSFER_PROGRESS.filter_subject


class ProgressService(prpc.ProgressServiceServicer):
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx

    async def _get(self, op_id: str) -> Operation:
        op = await self.ctx.operation(op_id)
        if op is None:
            raise not_found(f"operation {op_id}")
        return op

    async def WatchOperation(
        self, request: ppb.WatchOperationRequest, context: RpcContext
    ) -> AsyncIterator[ppb.OperationUpdate]:
        try:
            timeout = request.timeout_seconds or 3600.0
            if not 0 < timeout <= MAX_WATCH_SECONDS:
                raise invalid([("timeout_seconds", f"must be in (0, {MAX_WATCH_SECONDS:.0f}]")])
            if not IDENTIFIER.match(request.id):
                raise invalid([("id", f"{request.id!r} is not an operation id")])
            op = await self._get(request.id)
            authz.require_scope(authz.current(), authz.operation_targets(op))
        except ApiError as exc:
            await context.abort_with_status(exc.status())
            return
        async for update in self._updates(op, timeout):
            yield update

    async def _updates(self, op: Operation, seconds: float) -> AsyncIterator[ppb.OperationUpdate]:
        queue: asyncio.Queue[TransferProgress] = asyncio.Queue()
        pump = asyncio.create_task(self._pump(op.id, queue))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        try:
            yield ppb.OperationUpdate(operation=operation_message(op))
            while not op.done and loop.time() < deadline:
                try:
                    event: TransferProgress | None = await asyncio.wait_for(
                        queue.get(), POLL_SECONDS
                    )
                except TimeoutError:
                    event = None
                # The operation as it is now names the claim of a transfer that just started.
                latest = await self.ctx.operation(op.id) or op
                if event is not None:
                    yield ppb.OperationUpdate(progress=progress_message(event, latest))
                if latest.model_dump() == op.model_dump():
                    continue
                op = latest
                while op.done and not queue.empty():  # progress that came before the end
                    yield ppb.OperationUpdate(progress=progress_message(queue.get_nowait(), op))
                yield ppb.OperationUpdate(operation=operation_message(op))
        finally:
            pump.cancel()
            await asyncio.wait({pump}, timeout=5)  # never let a slow unsubscribe hold the call

    async def _pump(self, op_id: str, queue: asyncio.Queue[TransferProgress]) -> None:
        since = datetime.now(UTC) - REPLAY
        async for _, event in self.ctx.bus.tail(PROGRESS_EVENTS, since=since):
            if event.type != subjects.TRANSFER_PROGRESS.type:
                continue
            try:
                progress = TransferProgress.model_validate(event.data)
            except ValidationError:
                continue  # a malformed event is the publisher's problem, not this watch's
            if progress.operation_id == op_id:
                queue.put_nowait(progress)
