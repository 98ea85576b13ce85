"""A KV bucket over NATS JetStream: get, put, compare-and-set, delete and a complete key
listing. Split from the bus port (`nats_port.py`), which opens buckets and re-exports
these; like it, this module may import `nats`."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

from nats.errors import NoRespondersError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import (
    InvalidKeyError,
    KeyDeletedError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    ServiceUnavailableError,
)
from nats.js.kv import KeyValue as NatsKeyValue

from vessel.bus.errors import BusError, KeyExistsError


@contextlib.contextmanager
def _available(bucket: str) -> Iterator[None]:
    """JetStream away (a leaf whose hub is down, a hub restarting) is a `BusError`, the
    error callers already meet when the bus cannot answer."""
    try:
        yield
    except (ServiceUnavailableError, NoRespondersError) as exc:
        raise BusError(f"KV {bucket}: JetStream is unavailable ({exc!r})") from exc


@dataclass(frozen=True)
class Entry:
    key: str
    value: bytes
    revision: int


class KeyValue:
    """A KV bucket; `update` is a compare-and-set on the revision (one writer per key)."""

    def __init__(self, kv: NatsKeyValue, domain: str | None = None) -> None:
        self._kv = kv
        self._subjects = kv._pre  # the stream's subjects, `$KV.<bucket>.`
        self._writer = kv
        if domain:
            # Across a leaf node the hub takes KV writes only through its domain's API
            # (`$JS.<domain>.API.$KV.…`); nats-py writes to `$KV.…` whatever the domain.
            # Reads name the stream's own subjects, so writes get a copy of their own.
            self._writer = copy.copy(kv)
            self._writer._pre = f"$JS.{domain}.API.{self._subjects}"

    @property
    def bucket(self) -> str:
        return str(self._kv._name)

    async def get(self, key: str) -> Entry | None:
        try:
            with _available(self.bucket):
                entry = await self._kv.get(key)
        except (KeyNotFoundError, InvalidKeyError):
            return None  # a key NATS cannot store is a key that does not exist
        return Entry(key, entry.value or b"", entry.revision or 0)

    async def put(self, key: str, value: bytes) -> int:
        with _available(self.bucket):
            return await self._writer.put(key, value)

    async def create(self, key: str, value: bytes) -> int:
        """Only if `key` holds nothing (never written, or deleted)."""
        try:
            with _available(self.bucket):
                return await self._writer.update(key, value, last=0)
        except KeyWrongLastSequenceError as exc:
            try:
                with _available(self.bucket):
                    await self._kv._get(key)  # the public get hides a tombstone
            except KeyDeletedError as deleted:  # a tombstone: write over it
                return await self.update(key, value, deleted.entry.revision or 0)
            except KeyNotFoundError:
                pass
            raise KeyExistsError(f"key {key!r} exists") from exc

    async def update(self, key: str, value: bytes, revision: int) -> int:
        try:
            with _available(self.bucket):
                return await self._writer.update(key, value, last=revision)
        except KeyWrongLastSequenceError as exc:
            raise KeyExistsError(f"key {key!r} changed since revision {revision}") from exc

    async def delete(self, key: str) -> None:
        with _available(self.bucket):
            await self._writer.delete(key)

    async def keys(self, under: str = "") -> list[str]:
        """Current keys, read through a pull consumer delivering the last message of every
        key: the server says at creation how many there are, so none can be missed (a push
        watcher can signal "done" before every key arrived when they race its setup). The
        consumer is deleted at once, so frequent listing never nears the server's limit.
        `under`: only the keys below this dotted prefix (`apps.east`), filtered by the
        server."""
        js, stream, prefix = self._kv._js, self._kv._stream, self._subjects
        with _available(self.bucket):
            sub = await js.pull_subscribe(
                f"{prefix}{under}.>" if under else f"{prefix}>",
                stream=stream,
                config=ConsumerConfig(
                    deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
                    ack_policy=AckPolicy.NONE,
                    headers_only=True,
                    inactive_threshold=30.0,
                ),
            )
            keys: list[str] = []
            try:
                info = await sub.consumer_info()
                remaining = info.num_pending or 0
                while remaining > 0:
                    for msg in await sub.fetch(min(remaining, 256), timeout=5.0):
                        remaining -= 1
                        operation = (msg.headers or {}).get("KV-Operation")
                        if operation not in ("DEL", "PURGE"):
                            keys.append(msg.subject[len(prefix) :])
            finally:
                with contextlib.suppress(Exception):
                    info = await sub.consumer_info()
                    await js.delete_consumer(info.stream_name, info.name)
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
            return keys

    async def watch(
        self, under: str = "", current: Callable[[], None] | None = None
    ) -> AsyncIterator[tuple[str, bytes | None]]:
        """The keys below the dotted prefix `under` (empty: every key) as they are now, then
        every change, as (key, value); a deleted key's value is None. `current` is called
        once the keys as they are now were given. Runs until the caller stops."""
        watcher = await self._kv.watch(f"{under}.>" if under else ">")
        try:
            async for entry in watcher:
                if entry is None:  # the end of the current values
                    if current is not None:
                        current()
                    continue
                gone = entry.operation in ("DEL", "PURGE")
                yield entry.key, None if gone else (entry.value or b"")
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()  # type: ignore[no-untyped-call]
