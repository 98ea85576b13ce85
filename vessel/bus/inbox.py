"""A service's inbox: the one table of what it listens to, and the start of all of it.

Every service's `inbox.py` builds a list of these rows and hands it to `listen`: durable
consumers of commands and events, responders to core NATS queries, and the loops the
service runs on its own (Kubernetes informers, tickers). Reading that one list answers
"what does this service listen to"; the handlers live in the service's domain modules.
Rows start in list order, which matters where a consumer must exist before the first
command is handled (it sees only what is published after it exists).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vessel.bus.delivery import GiveUp, Handler
from vessel.bus.nats_port import Bus
from vessel.contracts.subjects import Message
from vessel.stopping import cancel_and_wait
from vessel.telemetry import metrics

log = logging.getLogger("vessel.bus")


@dataclass(frozen=True)
class Consumer:
    """A durable JetStream consumer dispatching by message type (all events or all
    commands); `cluster` narrows it to the messages addressed to one cluster."""

    durable: str
    handlers: Mapping[Message, Handler]
    cluster: str | None = None
    deliver_new: bool = False
    gave_up: GiveUp | None = None
    """Told each message given up after its handler failed (see `Bus.consume`)."""
    concurrency: int = 1
    """Messages handled at once (1: one after another, in order)."""


@dataclass(frozen=True)
class Responder:
    """Answers core NATS requests on `subject` (wildcards allowed); replicas sharing
    `queue` split them."""

    subject: str
    handler: Callable[[str, bytes], Awaitable[bytes]]
    queue: str = ""


@dataclass(frozen=True)
class Loop:
    """Work the service runs without a message: a watch, a ticker. `name` says what."""

    name: str
    run: Callable[[], Coroutine[Any, Any, None]]


Row = Consumer | Responder | Loop


async def start(bus: Bus, rows: Sequence[Row]) -> list[asyncio.Task[None]]:
    """Starts every row in order and returns their tasks."""
    tasks: list[asyncio.Task[None]] = []
    for row in rows:
        if isinstance(row, Consumer):
            tasks.append(
                await bus.consume(
                    row.durable,
                    row.handlers,
                    cluster=row.cluster,
                    deliver_new=row.deliver_new,
                    gave_up=row.gave_up,
                    concurrency=row.concurrency,
                )
            )
        elif isinstance(row, Responder):
            tasks.append(await bus.serve(row.subject, row.handler, queue=row.queue))
        else:
            tasks.append(asyncio.create_task(supervised(row), name=row.name))
    return tasks


FIRST_WAIT = 1.0
LONGEST_WAIT = 60.0
STEADY = 60.0
"""Seconds a loop started again must run before its failures are behind it."""
DOWN: set[str] = set()
"""Loops of this process waiting to start again; `/readyz` says not ready meanwhile."""


async def supervised(loop: Loop) -> None:
    """Run `loop`; when it fails, start it again after a wait that doubles up to
    `LONGEST_WAIT`: no background loop ends its service. Its first failure in a row is
    logged with the traceback, the others in one line each, and its recovery once."""
    wait, failures = FIRST_WAIT, 0
    while True:
        metrics.LOOP_UP.labels(loop.name).set(1)
        DOWN.discard(loop.name)
        task = asyncio.ensure_future(loop.run())
        try:
            if failures:
                await asyncio.wait({task}, timeout=STEADY)
                if not task.done():
                    log.info("%s runs again after %d failures", loop.name, failures)
                    wait, failures = FIRST_WAIT, 0
            await asyncio.wait({task})  # not `await task`: a cancel lost inside it hangs
            task.result()
            return
        except asyncio.CancelledError:
            await cancel_and_wait([task])  # its own clean-up is part of stopping
            raise
        except Exception as exc:
            failures += 1
            metrics.LOOP_UP.labels(loop.name).set(0)
            metrics.LOOP_FAILURES.labels(loop.name).inc()
            DOWN.add(loop.name)
            if failures == 1:
                log.exception("%s failed; starting it again in %gs", loop.name, wait)
            else:
                log.warning("%s failed again (%r); next try in %gs", loop.name, exc, wait)
        await asyncio.sleep(wait)
        wait = min(wait * 2, LONGEST_WAIT)


async def listen(bus: Bus, rows: Sequence[Row]) -> None:
    """Starts every row, then runs until one of them fails (its error is raised; a loop's
    failures are its supervisor's)."""
    await asyncio.gather(*await start(bus, rows))
