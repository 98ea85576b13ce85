"""Request/reply for discovery's queries, over core NATS through `Bus.request` / `Bus.serve`.

Subjects are `vessel.query.<service>.<query>`; replicas of discovery share one queue
group, so each request is answered once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from vessel.bus.nats_port import Bus

Handler = Callable[[str, bytes], Awaitable[bytes]]


async def request(bus: Bus, subject: str, body: bytes, wait: float = 5.0) -> bytes:
    """Send `body` on `subject` and return the reply; TimeoutError after `wait` seconds."""
    return await bus.request(subject, body, wait=wait)


class QueryServer:
    """Answers every request on `subjects` (a wildcard) with `handler(subject, body)`."""

    def __init__(self, bus: Bus, subjects: str, handler: Handler, durable: str) -> None:
        self.bus, self.subjects, self.handler, self.queue = bus, subjects, handler, durable
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = await self.bus.serve(self.subjects, self.handler, queue=self.queue)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
