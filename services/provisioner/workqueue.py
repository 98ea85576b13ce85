"""A keyed work queue, like client-go's: informers add keys, workers reconcile them.

A key is never handled by two workers at once; a key added while it is being handled is
handled once more afterwards (so no change is missed), and a key queued twice is handled
once. A handler that raises is retried with exponential backoff per key.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from vessel.stopping import cancel_and_wait
from vessel.telemetry import metrics

log = logging.getLogger("vessel.provisioner")
Key = tuple[str, str]
Handler = Callable[[Key], Awaitable[None]]


class Retry(Exception):
    """Handle the key again later (with backoff); not an error worth a traceback."""


class WorkQueue:
    def __init__(
        self,
        handle: Handler,
        *,
        workers: int = 8,
        first_backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        self._handle = handle
        self._workers = workers
        self._first = first_backoff
        self._max = max_backoff
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._queued: set[Key] = set()
        self._active: set[Key] = set()
        self._again: set[Key] = set()
        self._failures: dict[Key, int] = {}
        self._timers: dict[Key, asyncio.TimerHandle] = {}

    def add(self, key: Key, after: float = 0.0) -> None:
        if after > 0:
            if key not in self._timers:
                loop = asyncio.get_running_loop()
                self._timers[key] = loop.call_later(after, self._fire, key)
            return
        if key in self._active:
            self._again.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def _fire(self, key: Key) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def backoff(self, key: Key) -> float:
        count = self._failures.get(key, 0)
        self._failures[key] = count + 1
        return float(min(self._max, self._first * (2**count)))

    async def run(self) -> None:
        workers = [asyncio.create_task(self._work()) for _ in range(self._workers)]
        try:
            await asyncio.gather(*workers)
        finally:
            await cancel_and_wait(workers)
            for timer in self._timers.values():
                timer.cancel()

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            self._active.add(key)
            started, result = time.monotonic(), "ok"
            try:
                await self._handle(key)
            except Retry as exc:
                result = "retry"
                log.debug("%s %s: retrying: %s", *key, exc)
                self.add(key, self.backoff(key))
            except Exception:
                result = "error"
                log.exception("reconciling %s %s failed; retrying", *key)
                self.add(key, self.backoff(key))
            else:
                self._failures.pop(key, None)
            finally:
                metrics.RECONCILES.labels(key[0], result).inc()
                metrics.RECONCILE_SECONDS.labels(key[0]).observe(time.monotonic() - started)
                self._active.discard(key)
                if key in self._again:
                    self._again.discard(key)
                    self.add(key)
