"""Request/reply over what `Bus` exposes today (JetStream only, no core NATS subscriptions).

A request is published on its `vessel.query.<service>.<query>` subject with a
`Vessel-Reply-To: vessel.query.reply.<uuid>` header; the server answers by publishing on
that subject. Both live in the in-memory stream `VESSEL_QUERIES`, whose messages expire
after a minute. The requester reads its reply through an ordered consumer created before
it sends. Replacing this with core NATS request/reply needs `Bus.request` and `Bus.serve`
(see `request` and `QueryServer`); the subjects and payloads stay the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from vessel.bus.nats_port import Bus
from vessel.contracts import catalog

log = logging.getLogger("vessel.discovery")
REPLY_HEADER = "Vessel-Reply-To"
REPLY_PREFIX = "vessel.query.reply."
MAX_AGE_SECONDS = 60.0
Handler = Callable[[str, bytes], Awaitable[bytes]]


async def ensure_stream(bus: Bus) -> None:
    config: dict[str, Any] = {
        "name": catalog.QUERIES_STREAM,
        "subjects": [catalog.QUERY_SUBJECTS],
        "storage": "memory",
        "max_age": MAX_AGE_SECONDS,
        "max_bytes": 256 << 20,
    }
    try:
        await bus.js.add_stream(**config)
    except Exception:  # exists with other settings: bring it to these
        await bus.js.update_stream(**config)


async def request(bus: Bus, subject: str, body: bytes, wait: float = 5.0) -> bytes:
    """Send `body` on `subject` and return the reply; TimeoutError after `wait` seconds."""
    reply_to = f"{REPLY_PREFIX}{uuid.uuid4().hex}"
    sub = await bus.js.subscribe(reply_to, stream=catalog.QUERIES_STREAM, ordered_consumer=True)
    try:
        await bus.js.publish(subject, body, headers={REPLY_HEADER: reply_to})
        msg = await sub.next_msg(timeout=wait)
        return bytes(msg.data)
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


class QueryServer:
    """Answers every request on `subjects` (a wildcard) with `handler(subject, body)`."""

    def __init__(self, bus: Bus, subjects: str, handler: Handler, durable: str) -> None:
        self.bus, self.subjects, self.handler, self.durable = bus, subjects, handler, durable
        self._task: asyncio.Task[None] | None = None
        self._sub: Any = None

    async def start(self) -> None:
        await ensure_stream(self.bus)
        sub = await self.bus.js.pull_subscribe(
            self.subjects, durable=self.durable, stream=catalog.QUERIES_STREAM
        )
        self._sub = sub
        self._task = asyncio.create_task(self._serve(sub), name=f"queries:{self.durable}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    async def _serve(self, sub: Any) -> None:
        while True:
            try:
                msgs = await sub.fetch(16, timeout=1.0)
            except TimeoutError:
                continue
            except Exception:  # connection loss: the client reconnects; keep polling
                log.warning("query fetch failed; retrying", exc_info=True)
                await asyncio.sleep(0.5)
                continue
            for msg in msgs:
                await self._answer(msg)

    async def _answer(self, msg: Any) -> None:
        reply_to = (msg.headers or {}).get(REPLY_HEADER, "")
        try:
            if reply_to.startswith(REPLY_PREFIX) and "*" not in reply_to and ">" not in reply_to:
                await self.bus.js.publish(reply_to, await self.handler(msg.subject, msg.data))
            else:
                log.warning("query on %s without a valid %s header", msg.subject, REPLY_HEADER)
        except Exception:
            log.exception("query on %s failed", msg.subject)
        finally:
            await msg.ack()
