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
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vessel.bus.delivery import GiveUp, Handler
from vessel.bus.nats_port import Bus
from vessel.contracts.subjects import Message


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
                )
            )
        elif isinstance(row, Responder):
            tasks.append(await bus.serve(row.subject, row.handler, queue=row.queue))
        else:
            tasks.append(asyncio.create_task(row.run(), name=row.name))
    return tasks


async def listen(bus: Bus, rows: Sequence[Row]) -> None:
    """Starts every row, then runs until one of them fails (its error is raised)."""
    await asyncio.gather(*await start(bus, rows))
