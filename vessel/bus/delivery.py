"""How a durable consumer's messages are handled (`Bus.consume` runs one `Delivery` per
consumer): decoded and dispatched by type, acknowledged when the handler returns, sent again
with a growing delay when it fails, and dead-lettered (`system.dead_lettered`, never the
secrets of the payload) when it fails for good or after `MAX_DELIVER` deliveries, once the
consumer's `gave_up` was told. A long handler keeps its message in progress, so a live
worker is not redelivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from opentelemetry.trace import Span, SpanKind

from vessel.bus.codec import DecodeError, decode, for_dead_letter
from vessel.bus.errors import PermanentError, TemporaryError
from vessel.contracts import subjects
from vessel.contracts.envelope import CloudEvent
from vessel.contracts.events import DeadLettered
from vessel.contracts.models import Payload
from vessel.contracts.subjects import Message
from vessel.stopping import cancel_and_wait
from vessel.telemetry import metrics, tracing

log = logging.getLogger("vessel.bus")
Handler = Callable[[Any], Awaitable[None]]
MAX_DELIVER = 5
DEFAULT_RETRY_DELAY = 2.0
MAX_RETRY_DELAY = 60.0
"""A failing message waits twice as long each delivery, up to this: a temporary error
(a store outage) is tried again for over a minute before the message is given up."""
GiveUp = Callable[[Any, str], Awaitable[None]]
"""Told a handled message's payload and why, when its consumer gives it up (dead-letters
it): the service's last word on it, e.g. a failed result the waiting side acts on."""


@contextlib.contextmanager
def processing(msg: Msg, event: CloudEvent | None) -> Iterator[Span]:
    """The CONSUMER span of handling `msg`, in the trace its header (else envelope) names."""
    headers = msg.headers or {}
    parent = headers.get("traceparent") or (event.traceparent if event is not None else None)
    with tracing.span(
        f"{msg.subject} process",
        tracing.messaging(msg.subject, "process", event.id if event is not None else None),
        kind=SpanKind.CONSUMER,
        context=tracing.extract({"traceparent": parent} if parent else {}),
    ) as span:
        yield span


def _known_type(event: CloudEvent | None) -> str:
    """A label value that stays bounded: unknown types are not echoed into metrics."""
    return event.type if event is not None and event.type in subjects.BY_TYPE else "unknown"


Publish = Callable[[Message, Payload], Awaitable[Any]]


class Delivery:
    """One durable consumer's loop over `stream`, handlers by message type."""

    def __init__(
        self,
        publish: Publish,
        stream: str,
        by_type: dict[str, Handler],
        gave_up: GiveUp | None = None,
        *,
        keep_alive: float = 10.0,
        concurrency: int = 1,
    ) -> None:
        self.publish, self.stream, self.by_type, self.gave_up = publish, stream, by_type, gave_up
        self.keep_alive = keep_alive
        """Seconds between a running handler's in-progress signals (a third of the ack wait)."""
        self.concurrency = max(concurrency, 1)
        """Messages handled at once. Only as many are fetched as can start now: a fetched
        message waiting its turn would run out its ack wait and be delivered again."""

    async def run(self, sub: JetStreamContext.PullSubscription) -> None:
        """Fetch and handle until cancelled; a lost connection is waited out."""
        running: set[asyncio.Task[None]] = set()
        try:
            await self._run(sub, running)
        finally:
            await cancel_and_wait(list(running))

    async def _run(
        self, sub: JetStreamContext.PullSubscription, running: set[asyncio.Task[None]]
    ) -> None:
        stream = self.stream
        failing = 0
        while True:
            if len(running) >= self.concurrency:
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                running -= done
                continue
            try:
                batch = 10 if self.concurrency == 1 else self.concurrency - len(running)
                msgs = await sub.fetch(batch, timeout=1.0)
            except (NatsTimeout, TimeoutError):  # nothing arrived within the poll
                continue
            except Exception as exc:  # connection or JetStream lost: keep polling
                # Once, then every 120th try (a minute): an outage is one line, not a flood.
                if failing % 120 == 0:
                    log.warning("fetch from %s failed (%r); retrying", stream, exc)
                failing += 1
                await asyncio.sleep(0.5)
                continue
            if failing:
                log.info("fetch from %s works again after %d failed tries", stream, failing)
                failing = 0
            for msg in msgs:
                if self.concurrency == 1:
                    await self._dispatch(msg)
                else:
                    running.add(asyncio.create_task(self._dispatch(msg)))

    async def _dispatch(self, msg: Msg) -> None:
        try:
            event, payload = decode(msg.data)
        except DecodeError as exc:
            with processing(msg, exc.event) as span:
                tracing.fail(span, str(exc))
                await self._dead_letter(msg, str(exc), exc.event)
            metrics.MESSAGES.labels(_known_type(exc.event), "dead_lettered").inc()
            return
        handler = self.by_type.get(event.type)
        if handler is None:
            await msg.ack()  # another consumer's type on a shared filter: not ours to judge
            return
        with processing(msg, event) as span:
            await self._handle(msg, event, payload, handler, span)

    async def _handle(
        self, msg: Msg, event: CloudEvent, payload: Any, handler: Handler, span: Span
    ) -> None:
        delivered = msg.metadata.num_delivered
        heartbeat = asyncio.create_task(self._keep_alive(msg, self.keep_alive))
        outcome = "acked"
        started = time.monotonic()
        try:
            await handler(payload)
        except PermanentError as exc:
            outcome = "dead_lettered"
            span.record_exception(exc)
            tracing.fail(span, f"terminated: {exc}")
            await self._give_up(msg, event, payload, f"permanent error: {exc}")
        except Exception as exc:
            span.record_exception(exc)
            tracing.fail(span, f"{'terminated' if delivered >= MAX_DELIVER else 'naked'}: {exc}")
            delay = exc.delay if isinstance(exc, TemporaryError) else DEFAULT_RETRY_DELAY
            delay = min(delay * 2 ** (delivered - 1), MAX_RETRY_DELAY)
            if delivered >= MAX_DELIVER:
                outcome = "dead_lettered"
                error = f"gave up after {delivered} deliveries: {exc}"
                await self._give_up(msg, event, payload, error)
            else:
                outcome = "retried"
                if not isinstance(exc, TemporaryError):
                    log.exception("handler for %s failed; will retry", event.type)
                await msg.nak(delay=delay)
        else:
            await msg.ack()
        finally:
            heartbeat.cancel()
            metrics.MESSAGES.labels(event.type, outcome).inc()
            metrics.HANDLER_SECONDS.labels(event.type).observe(time.monotonic() - started)

    @staticmethod
    async def _keep_alive(msg: Msg, every: float) -> None:
        """Long handlers (a volume copy) tell the server they are alive, so no redelivery."""
        while True:
            await asyncio.sleep(every)
            await msg.in_progress()

    async def _give_up(self, msg: Msg, event: CloudEvent, payload: Any, error: str) -> None:
        if self.gave_up is not None:
            try:
                await self.gave_up(payload, error)
            except Exception:  # the dead letter still records it
                log.exception("telling that %s was given up failed", event.type)
        await self._dead_letter(msg, error, event)

    async def _dead_letter(self, msg: Msg, error: str, event: CloudEvent | None) -> None:
        log.error("dead-lettering %s seq %s: %s", msg.subject, msg.metadata.sequence.stream, error)
        await self.publish(
            subjects.DEAD_LETTERED,
            DeadLettered(
                stream=self.stream,
                subject=msg.subject,
                sequence=msg.metadata.sequence.stream,
                message_id=event.id if event else None,
                type=event.type if event else None,
                error=error,
                data=for_dead_letter(msg.data, event),
            ),
        )
        await msg.term()
