"""What protection does with a message it gives up (its handler failed for good, or after
every delivery): the operation the message was about, if it names one that has not
ended, ends Failed with why. Without this, a command given up while its bucket was away
left its operation New or InProgress for good."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from services.protection.state.operations import OperationStore
from vessel.contracts.operations import Operation, Phase, PhaseTransitionError

log = logging.getLogger("vessel.protection")


Failed = Callable[[Operation], Awaitable[None]]
"""Told each operation failed outside its own flow (what follows a failure, by kind)."""


class GivenUp:
    def __init__(self, operations: OperationStore, failed: Failed | None = None) -> None:
        self.operations, self.failed = operations, failed

    async def __call__(self, payload: Any, error: str) -> None:
        op_id = getattr(payload, "operation_id", None)
        if not isinstance(op_id, str) or not op_id:
            return
        message = f"{type(payload).__name__} was given up: {error}"

        def fail(op: Operation) -> None:
            if not op.done and op.phase != Phase.CANCELING:
                op.phase, op.message = Phase.FAILED, message

        try:
            op = await self.operations.change(op_id, fail)
        except (KeyError, PhaseTransitionError):
            return  # no such operation (a bucket command), or it ended meanwhile
        if op.phase == Phase.FAILED and op.message == message:
            log.error("operation %s failed: %s", op_id, message)
            if self.failed is not None:
                await self.failed(op)
