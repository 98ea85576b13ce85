"""The only module that imports `nats`: connection, streams, consumers, publishing and KV.

Contract of `Bus`:
- `connect` retries until the server answers and reconnects forever afterwards.
- `ensure_streams`, `kv` and durable consumer creation are idempotent: calling them again
  with the same configuration changes nothing, with a new one updates in place.
- `publish` is at-least-once with JetStream de-duplication on `Nats-Msg-Id` = event id,
  so a publish retried after a lost ack is stored once.
- `consume` runs handlers with retry policy from `vessel.bus.errors`; a message that cannot
  be decoded, fails permanently, or exhausts its deliveries is terminated and re-published
  as `system.message.deadlettered`.
- Every message carries W3C trace context (header `traceparent`, mirrored in the envelope):
  publishing is a PRODUCER span, handling a CONSUMER span continuing the producer's trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import (
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StreamConfig,
)
from nats.js.errors import (
    BadRequestError,
    NotFoundError,
    ServiceUnavailableError,
)
from nats.js.kv import KeyValue as KeyValueStore
from opentelemetry.trace import SpanKind

from vessel.bus.codec import encode
from vessel.bus.delivery import MAX_DELIVER, Delivery, GiveUp, Handler, processing
from vessel.bus.errors import BusError
from vessel.bus.kv import Entry as Entry
from vessel.bus.kv import KeyValue as KeyValue
from vessel.contracts import subjects
from vessel.contracts.envelope import CONTENT_TYPE, CloudEvent
from vessel.contracts.models import Payload
from vessel.contracts.subjects import Message
from vessel.stopping import cancel_and_wait
from vessel.telemetry import metrics, tracing

log = logging.getLogger("vessel.bus")
MAX_CONSUMERS = 100_000
"""Consumers a stream takes. Left unset, nats-server refuses the 1,001st, and every
cluster's node agents hold five (four on the commands stream), its agent one watch of
`app-definitions`: a fleet of 250 clusters would stop there
(docs/design/0009-a-thousand-clusters.md)."""
ACK_WAIT = 30.0
"""Seconds after which a message its worker neither acknowledged nor said is in progress
goes to another worker (the default of the `redelivery_seconds` setting): a live handler
says so every third of it, so only a dead one's message waits this long."""
BUCKET_WAITS = 240
"""Half-seconds a cluster's agent waits for the hub to make a KV bucket."""


@dataclass
class Outage:
    """A NATS connection's outages in the log: one line when it is lost, one when it is
    back (how long it was away), and between them one line a minute saying it still is."""

    url: str
    every: float = 60.0
    since: float | None = None
    attempts: int = 0
    said: float = 0.0

    def lost(self) -> None:
        if self.since is None:
            self.since = self.said = time.monotonic()
            self.attempts = 0
            log.warning("NATS connection to %s lost; reconnecting", self.url)

    def attempt(self) -> None:
        self.attempts += 1
        if self.since is not None and time.monotonic() - self.said >= self.every:
            self.said = time.monotonic()
            away = self.said - self.since
            log.warning(
                "NATS at %s still away after %.0fs (%d reconnect attempts)",
                self.url,
                away,
                self.attempts,
            )

    def back(self) -> None:
        if self.since is not None:
            log.info(
                "NATS connection to %s back after %.1fs", self.url, time.monotonic() - self.since
            )
        self.since = None


@dataclass(frozen=True)
class NatsAuth:
    """Who a service is on NATS: a user and password, or a `.creds` file."""

    user: str | None = None
    password: str | None = None
    credentials: str | None = None
    jetstream_domain: str | None = None
    """The JetStream domain of the hub, for a service whose server is a leaf node."""

    def options(self) -> dict[str, Any]:
        if self.credentials:
            return {"user_credentials": self.credentials}
        return {"user": self.user, "password": self.password} if self.user else {}


class Bus:
    def __init__(self, source: str, ack_wait: float = ACK_WAIT) -> None:
        self.source = source
        self.ack_wait = ack_wait
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._domain: str | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    @property
    def max_payload(self) -> int:
        """The largest message the server takes, in bytes (as it announced on connect)."""
        if self._nc is None:
            raise BusError("bus is not connected")
        return int(self._nc.max_payload)

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise RuntimeError("bus is not connected")
        return self._js

    async def connect(
        self, url: str, name: str, attempts: int = 60, auth: NatsAuth | None = None
    ) -> None:
        """Connects as `auth`'s user (none: anonymous). A server that refuses the
        credentials is not retried: the error says so at once."""
        credentials = {} if auth is None else auth.options()
        connected = False
        outage = Outage(url)

        async def on_error(error: Exception) -> None:
            # Raised inside the first connect it ends it: retrying cannot fix credentials.
            if not connected and "authorization violation" in str(error).lower():
                who = auth.user if auth and auth.user else "this client"
                raise BusError(f"NATS at {url} refused the credentials of {who}: {error}")
            if isinstance(error, OSError):
                outage.attempt()  # a failed reconnect, every 0.5 s of an outage: summed up
                return
            log.error("NATS: %s", error)

        async def on_disconnect() -> None:
            outage.lost()

        async def on_reconnect() -> None:
            outage.back()

        for attempt in range(attempts):
            try:
                self._nc = await nats.connect(
                    url,
                    name=name,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    connect_timeout=2,
                    allow_reconnect=True,
                    error_cb=on_error,
                    disconnected_cb=on_disconnect,
                    reconnected_cb=on_reconnect,
                    **credentials,
                )
                connected = True
                break
            except (OSError, NatsTimeout, nats.errors.NoServersError):
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(0.5)
        assert self._nc is not None
        self._domain = auth.jetstream_domain if auth else None
        self._js = self._nc.jetstream(domain=self._domain)
        for attempt in range(attempts):
            try:
                if self._domain is None:
                    await self.ensure_streams()
                else:  # a cluster's agent through its leaf: the hub makes the streams
                    for stream in (subjects.EVENTS_STREAM, subjects.COMMANDS_STREAM):
                        await self.js.stream_info(stream)
                return
            except (
                ServiceUnavailableError,
                nats.errors.NoRespondersError,
                NatsTimeout,
                NotFoundError,
            ) as exc:
                # Connected, but JetStream (or, for an agent, the hub's streams) is not there
                # yet: a leaf whose hub is away or restarting. Wait for it within the same
                # budget as the connection.
                if attempt == attempts - 1:
                    raise BusError(f"JetStream at {url} did not answer: {exc!r}") from exc
                if attempt % 20 == 0:
                    log.warning("JetStream at %s is not available yet; waiting", url)
                await asyncio.sleep(0.5)

    async def ensure_streams(self) -> None:
        await self._ensure_stream(
            StreamConfig(
                name=subjects.EVENTS_STREAM,
                subjects=[subjects.EVENT_SUBJECTS],
                duplicate_window=120.0,
                max_age=7 * 24 * 3600.0,
                max_consumers=MAX_CONSUMERS,
            )
        )
        await self._ensure_stream(
            StreamConfig(
                name=subjects.COMMANDS_STREAM,
                subjects=[subjects.COMMAND_SUBJECTS],
                retention=RetentionPolicy.WORK_QUEUE,
                duplicate_window=120.0,
                max_consumers=MAX_CONSUMERS,
            )
        )

    async def _ensure_stream(self, config: StreamConfig) -> None:
        try:
            await self.js.add_stream(config)
        except BadRequestError:
            await self.js.update_stream(config)

    async def kv(self, bucket: str, history: int = 5) -> KeyValue:
        """The bucket, created if missing. Its stream takes `MAX_CONSUMERS` (each cluster's
        agent watches some buckets: the server's default would stop a fleet at 1,000). A
        cluster's agent through its leaf may not create or change a stream: it waits for the
        hub to make the bucket (`ensure_buckets`)."""
        if self._domain is not None:
            return KeyValue(await self._made_by_hub(bucket), self._domain)
        try:
            found = await self.js.key_value(bucket)
        except nats.js.errors.BucketNotFoundError:
            try:
                found = await self.js.create_key_value(bucket=bucket, history=history)
            except BadRequestError:  # created meanwhile by another service (its limit raised)
                found = await self.js.key_value(bucket)
        info = await self.js.stream_info(found._stream)
        if info.config.max_consumers != MAX_CONSUMERS:
            await self.js.update_stream(replace(info.config, max_consumers=MAX_CONSUMERS))
        return KeyValue(found, self._domain)

    async def _made_by_hub(self, bucket: str) -> KeyValueStore:
        for attempt in range(BUCKET_WAITS):
            try:
                return await self.js.key_value(bucket)
            except nats.js.errors.BucketNotFoundError:
                if attempt % 20 == 0:
                    log.warning("KV bucket %s does not exist yet; waiting for the hub", bucket)
                await asyncio.sleep(0.5)
        raise BusError(f"KV bucket {bucket} was not made by the hub in {BUCKET_WAITS // 2}s")

    async def ensure_buckets(self, buckets: Iterable[str]) -> None:
        """Make `buckets`, all at once (the hub does, for the agents that may not)."""
        await asyncio.gather(*(self.kv(bucket) for bucket in buckets))

    async def publish(
        self,
        message: Message,
        payload: Payload,
        *,
        cluster: str | None = None,
        subject: str | None = None,
    ) -> CloudEvent:
        """Publish `payload` as `message`. A subject that carries a cluster takes `cluster`,
        else the payload's own `cluster` field."""
        event = encode(message, payload, self.source, subject, None)
        about = getattr(payload, "cluster", None)
        where = cluster or (about if isinstance(about, str) else None)
        event = await self.publish_raw(message.subject_for(where), event)
        metrics.PUBLISHED.labels(message.type).inc()
        return event

    async def publish_raw(self, subject: str, event: CloudEvent) -> CloudEvent:
        """Publish an encoded event in a PRODUCER span; returns it as sent, carrying that
        span's traceparent. Outside any trace, an event's own traceparent is continued."""
        with tracing.span(
            f"{subject} publish",
            tracing.messaging(subject, "publish", event.id),
            kind=SpanKind.PRODUCER,
            context=tracing.continuing(event.traceparent),
        ):
            headers = {"Nats-Msg-Id": event.id, "Content-Type": CONTENT_TYPE}
            tracing.inject(headers)
            event = event.model_copy(update={"traceparent": headers.get("traceparent")})
            await self.js.publish(
                subject, event.model_dump_json(exclude_none=True).encode(), headers=headers
            )
        return event

    async def consume(
        self,
        durable: str,
        handlers: Mapping[Message, Handler],
        *,
        cluster: str | None = None,
        deliver_new: bool = False,
        gave_up: GiveUp | None = None,
        concurrency: int = 1,
    ) -> asyncio.Task[None]:
        """Start a durable pull consumer dispatching by event type; returns its task.
        `gave_up` is told each message it dead-letters after a handler failed;
        `concurrency` messages are handled at once (in order when 1)."""
        kinds = {m.kind for m in handlers}
        if len(kinds) != 1:
            raise ValueError("one consumer serves either events or commands")
        stream = subjects.EVENTS_STREAM if kinds == {"event"} else subjects.COMMANDS_STREAM
        filters = sorted(
            {m.subject_for(cluster) if cluster else m.filter_subject for m in handlers}
            | {m.legacy_subject for m in handlers if m.legacy_subject and not cluster}
        )
        config = ConsumerConfig(
            durable_name=durable,
            ack_wait=self.ack_wait,
            max_deliver=MAX_DELIVER,
            filter_subjects=filters,
            deliver_policy=DeliverPolicy.NEW if deliver_new else DeliverPolicy.ALL,
        )
        try:
            info = await self.js.add_consumer(stream, config)
        except BadRequestError as exc:
            # It exists with settings a previous version chose: keep its position. Any other
            # refusal (a work-queue stream gives each subject to one consumer) must be seen,
            # not become a consumer that never receives.
            try:
                info = await self.js.consumer_info(stream, durable)
            except NotFoundError:
                raise BusError(
                    f"consumer {durable} on {stream} refused: {exc.description}"
                ) from exc
        sub = await self.js.pull_subscribe_bind(durable, stream=stream)
        by_type = {m.type: h for m, h in handlers.items()}
        # Alive thrice per ack wait, the consumer's own: one kept from before may differ.
        keep_alive = (info.config.ack_wait or self.ack_wait) / 3
        delivery = Delivery(
            self.publish, stream, by_type, gave_up, keep_alive=keep_alive, concurrency=concurrency
        )
        task = asyncio.create_task(delivery.run(sub), name=f"consume:{durable}")
        self._tasks.append(task)
        return task

    async def request(self, subject: str, data: bytes, wait: float = 5.0) -> bytes:
        """Core NATS request/reply (queries, not work): the reply's body. TimeoutError when
        no answer comes in time, BusError when nobody serves `subject`."""
        if self._nc is None:
            raise BusError("bus is not connected")
        with tracing.span(
            f"{subject} publish",
            tracing.messaging(subject, "publish", None),
            kind=SpanKind.PRODUCER,
        ):
            headers: dict[str, str] = {}
            tracing.inject(headers)
            try:
                reply = await self._nc.request(subject, data, timeout=wait, headers=headers)
            except nats.errors.NoRespondersError as exc:
                raise BusError(f"nobody answers requests on {subject}") from exc
        return bytes(reply.data)

    async def overhear(self, subject: str, note: Callable[[bytes], None]) -> asyncio.Task[None]:
        """Hear every message published on `subject` (wildcards allowed) as it passes, without
        a consumer: nothing is acknowledged and nothing missed is fetched later (progress
        events, for instance). Returns a task; cancelling it stops listening."""
        if self._nc is None:
            raise BusError("bus is not connected")

        async def heard(msg: Msg) -> None:
            note(bytes(msg.data))

        subscription = await self._nc.subscribe(subject, cb=heard)
        return asyncio.create_task(_held(subscription), name=f"overhear:{subject}")

    async def serve(
        self,
        subject: str,
        handler: Callable[[str, bytes], Awaitable[bytes]],
        queue: str = "",
    ) -> asyncio.Task[None]:
        """Answer requests on `subject` (wildcards allowed) with `handler(subject, body)`;
        replicas sharing `queue` split the requests. A handler error is logged and the
        requester times out. Returns a task; cancelling it stops serving."""
        if self._nc is None:
            raise BusError("bus is not connected")

        async def answer(msg: Msg) -> None:
            with processing(msg, None) as span:
                try:
                    await msg.respond(await handler(msg.subject, msg.data))
                except Exception as exc:
                    span.record_exception(exc)
                    tracing.fail(span, f"no answer: {exc}")
                    log.exception("request on %s failed", msg.subject)

        subscription = await self._nc.subscribe(subject, queue=queue, cb=answer)
        task = asyncio.create_task(_held(subscription), name=f"serve:{subject}")
        self._tasks.append(task)
        return task

    async def tail(
        self,
        subject: str = subjects.EVENT_SUBJECTS,
        since: datetime | None = None,
    ) -> AsyncIterator[tuple[str, CloudEvent]]:
        """Every event on `subject` from `since` (or only new ones), as (subject, envelope)."""
        kwargs: dict[str, Any] = {"deliver_policy": DeliverPolicy.NEW}
        if since is not None:
            kwargs = {
                "deliver_policy": DeliverPolicy.BY_START_TIME,
                "opt_start_time": since.isoformat(),
            }
        sub = await self.js.subscribe(
            subject, ordered_consumer=True, config=ConsumerConfig(**kwargs)
        )
        try:
            async for msg in sub.messages:
                yield msg.subject, CloudEvent.model_validate_json(msg.data)
        finally:
            # Delete the ordered consumer now rather than when it times out: callers that
            # tail per request would otherwise pile up against the server's consumer limit.
            with contextlib.suppress(Exception):
                info = await sub.consumer_info()
                await self.js.delete_consumer(info.stream_name, info.name)
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def close(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        if self._nc is not None:
            # Flush what was published, then close: drain() can wait its full timeout on the
            # pull subscriptions' internal queues.
            with contextlib.suppress(Exception):
                await self._nc.flush(timeout=2)
            with contextlib.suppress(OSError):  # the server is already gone: nothing to say
                await self._nc.close()
            self._nc = None


async def _held(subscription: Subscription) -> None:
    """Keep `subscription` until cancelled, then unsubscribe."""
    try:
        await asyncio.Event().wait()
    finally:
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()
