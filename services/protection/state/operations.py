"""Operation records in KV `operations`, changed only by compare-and-set so concurrent
handlers (several transfer events for one backup) never lose each other's updates.

Every write is checked against the phase table (`check_transition`): a phase never goes
back and an ended operation never changes phase, whoever writes it. Work that finishes
after a cancel won is the one exception that is not an error: a Canceling or Canceled
operation keeps its phase and message, whatever a late flow writes, so late work never
un-cancels an operation.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from vessel.bus.errors import KeyExistsError
from vessel.bus.nats_port import KeyValue
from vessel.contracts.activity import activity_key, for_operation
from vessel.contracts.events import TransferResult
from vessel.contracts.operations import TRANSITIONS, Operation, Phase, check_transition, now
from vessel.telemetry import metrics

CANCELED: frozenset[Phase] = frozenset({Phase.CANCELING, Phase.CANCELED})
"""The phases of an operation a cancel won."""


def running(op: Operation) -> bool:
    """Neither ended nor being canceled: the only operations flows still act on. Canceling
    is not an end (`op.done` is False while its cleanup runs), but it is no longer running."""
    return not op.done and op.phase != Phase.CANCELING


def settled(op: Operation) -> bool:
    """Still running, and every volume's transfer has ended."""
    return running(op) and op.settled


class OperationStore:
    def __init__(self, kv: KeyValue, activity: KeyValue | None = None) -> None:
        self.kv = kv
        self.activity = activity
        """KV `activity`: a record per operation, written when accepted and when ended."""

    async def _record_activity(self, op: Operation) -> None:
        if self.activity is not None:
            record = for_operation(op)
            key = activity_key(record.time, record.id)
            await self.activity.put(key, record.model_dump_json().encode())

    async def get(self, op_id: str) -> Operation | None:
        entry = await self.kv.get(op_id)
        return Operation.model_validate_json(entry.value) if entry else None

    async def create(self, op: Operation) -> bool:
        """False when an operation with that id exists (a repeated command)."""
        try:
            await self.kv.create(op.id, op.model_dump_json().encode())
        except KeyExistsError:
            return False
        await self._record_activity(op)
        return True

    async def change(self, op_id: str, mutate: Callable[[Operation], None]) -> Operation:
        """The operation after `mutate`, stored; PhaseTransitionError (naming the operation
        and both phases) when `mutate` moves it where its phase may not go."""
        for _ in range(50):
            entry = await self.kv.get(op_id)
            if entry is None:
                raise KeyError(f"operation {op_id} not found")
            op = Operation.model_validate_json(entry.value)
            was_done, phase, message = op.done, op.phase, op.message
            mutate(op)
            if phase in CANCELED and op.phase != phase and op.phase not in TRANSITIONS[phase]:
                op.phase, op.message = phase, message  # late work never un-cancels
            check_transition(op_id, phase, op.phase)
            op.updated = now()
            try:
                await self.kv.update(op_id, op.model_dump_json().encode(), entry.revision)
            except KeyExistsError:
                continue
            if op.done and not was_done:
                metrics.OPERATIONS.labels(op.kind, op.phase).inc()
                if op.phase == Phase.COMPLETED:
                    metrics.LAST_SUCCESS.labels(op.kind).set(time.time())
                await self._record_activity(op)
            return op
        raise RuntimeError(f"operation {op_id}: too many concurrent updates")

    async def record_transfer(self, result: TransferResult) -> Operation:
        """Record a mover's result on the volume it belongs to."""

        def record(op: Operation) -> None:
            for work in op.volumes:
                if work.transfer_id == result.transfer_id:
                    work.state = "Failed" if result.error else "Done"
                    work.error, work.bytes = result.error, result.bytes
                    work.files = result.files
                    work.snapshot_id = result.snapshot_id or work.snapshot_id

        return await self.change(result.operation_id, record)
