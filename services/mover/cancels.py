"""Transfers of canceled operations stop (`protection.operation.canceled`).

Canceled operation ids are kept in the mover's KV bucket `canceled_operations`
(`state.CanceledOperations`: a transfer command arriving after the cancel, or after a
restart, fails at once) and in memory. A running transfer is raced against its
operation's cancel: once canceled, the transfer is reported `mover.transfer.failed` with
error "canceled" at once; its copy thread stops at its next progress report (the report
raises `TransferStopped`, the worker stops at its next file or chunk) and its result is
dropped. The repository stays consistent (a snapshot is written last, and an unreferenced
one is pruned), so a stopped copy costs space for a while, never correctness.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from services.mover.state import CanceledOperations
from vessel.bus.nats_port import KeyValue
from vessel.contracts.protection import OperationCanceled

log = logging.getLogger("vessel.mover")
T = TypeVar("T")
CANCELED = "canceled"
"""The error of a transfer stopped by its operation's cancel."""


class Cancels:
    """The canceled operations: kept in KV `canceled_operations` (given as `kv`), known in
    memory, and raced against the transfers running for them."""

    def __init__(self, kv: KeyValue, cluster: str) -> None:
        self.store = CanceledOperations(kv, cluster)
        self._known: set[str] = set()
        self._events: dict[str, asyncio.Event] = {}
        self._running: dict[str, int] = {}
        """Transfers of each operation running now."""

    def _event(self, operation_id: str) -> asyncio.Event:
        event = self._events.setdefault(operation_id, asyncio.Event())
        if operation_id in self._known:
            event.set()
        return event

    async def on_canceled(self, event: OperationCanceled) -> None:
        await self.store.put(event)
        self._known.add(event.operation_id)
        running = self._events.get(event.operation_id)
        if running is not None:
            running.set()
        log.info("operation %s canceled: its transfers stop", event.operation_id)

    async def is_canceled(self, operation_id: str) -> bool:
        if operation_id in self._known:
            return True
        if await self.store.holds(operation_id):
            self._known.add(operation_id)
            return True
        return False

    def flagged(self, operation_id: str) -> bool:
        """Canceled as far as this process knows (cheap: for progress callbacks)."""
        return operation_id in self._known

    async def run(self, operation_id: str, work: Callable[[], T]) -> T | None:
        """`work()` in a thread, or None as soon as the operation is canceled."""
        self._running[operation_id] = self._running.get(operation_id, 0) + 1
        stop = asyncio.ensure_future(self._event(operation_id).wait())
        job = asyncio.ensure_future(asyncio.to_thread(work))
        try:
            await asyncio.wait({job, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            self._running[operation_id] -= 1
            if not self._running[operation_id]:  # nothing waits on it any more
                del self._running[operation_id]
                self._events.pop(operation_id, None)
        if job.done():
            return job.result()
        job.add_done_callback(_drop)
        return None


def _drop(job: asyncio.Future[Any]) -> None:
    if not job.cancelled() and job.exception() is not None:
        log.info("abandoned transfer ended with %s", job.exception())
