"""Buckets as the gateway sees them: configured buckets opened with the gateway's own
credentials; registered buckets (whose credentials are Kubernetes Secrets the gateway cannot
read) as a read-only view of their catalog objects, served by protection over NATS.

The view's methods block: like every store call they run in a worker thread
(`asyncio.to_thread`), and wait there for the answer from the gateway's event loop.
"""

from __future__ import annotations

import asyncio
import base64

from pydantic import ValidationError

from vessel.bus.errors import BusError
from vessel.bus.nats_port import Bus, KeyValue
from vessel.config import VesselSettings
from vessel.contracts import queries
from vessel.contracts.buckets import CatalogRead, CatalogReply
from vessel.contracts.events import QueryFailed
from vessel.objectstore.base import ObjectNotFound, ObjectStore, ObjectStoreError, StoreUnavailable
from vessel.objectstore.buckets import Buckets

WAIT_SECONDS = 10.0


class RemoteCatalog:
    """The read-only part of `ObjectStore` catalog readers use (list, exists, get_bytes),
    over the catalog query."""

    def __init__(self, bus: Bus, loop: asyncio.AbstractEventLoop, bucket: str) -> None:
        self.bus, self.loop, self.bucket = bus, loop, bucket

    def _ask(self, action: str, key: str) -> CatalogReply:
        body = CatalogRead.model_validate({"bucket": self.bucket, "action": action, "key": key})
        future = asyncio.run_coroutine_threadsafe(
            self.bus.request(queries.QUERY_CATALOG, body.model_dump_json().encode(), WAIT_SECONDS),
            self.loop,
        )
        try:
            raw = future.result(WAIT_SECONDS + 5)
        except (TimeoutError, BusError) as exc:
            raise StoreUnavailable(
                f"bucket {self.bucket}: protection does not answer: {exc}"
            ) from exc
        try:
            return CatalogReply.model_validate_json(raw)
        except ValidationError:
            try:
                failed = QueryFailed.model_validate_json(raw)
            except ValidationError as exc:
                raise StoreUnavailable(f"bucket {self.bucket}: unreadable answer") from exc
            raise ObjectStoreError(f"bucket {self.bucket}: {failed.error}") from None

    def list(self, prefix: str) -> list[str]:
        return self._ask("list", prefix).keys

    def exists(self, key: str) -> bool:
        return self._ask("exists", key).exists

    def get_bytes(self, key: str) -> bytes:
        reply = self._ask("get", key)
        if reply.missing:
            raise ObjectNotFound(f"bucket {self.bucket}: {key} not found")
        return base64.b64decode(reply.data)


class GatewayBuckets:
    def __init__(self, settings: VesselSettings, bus: Bus, registry: KeyValue) -> None:
        self.settings, self.bus, self.registry = settings, bus, registry
        self.configured = Buckets(settings)

    async def known(self, name: str) -> bool:
        if any(b.name == name for b in self.settings.buckets):
            return True
        return await self.registry.get(name) is not None

    async def names(self) -> list[str]:
        return sorted({b.name for b in self.settings.buckets} | set(await self.registry.keys()))

    def open(self, name: str) -> ObjectStore:
        """Call from the event loop; use the store in a worker thread."""
        if any(b.name == name for b in self.settings.buckets):
            return self.configured.open(name)
        return RemoteCatalog(self.bus, asyncio.get_running_loop(), name)  # type: ignore[return-value]
