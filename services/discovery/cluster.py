"""One registered cluster as discovery watches it: its kube client, inventory, health, KV
record and the agent calls it answers (`agent.py`), and the `Tuning` of every cluster's
watches.

The record in the `clusters` bucket is rewritten when the state, reason or conditions
change, and every `contact_interval` seconds otherwise: that write is the agent's
heartbeat (with its version), which tells the hub the agent is alive. Transitions into
Unreachable publish `cluster.unreachable`; from Unreachable back to Available,
`cluster.recovered`. The inventory keeps its caches and watch positions while the server
is away, so a cluster that comes back is resumed, not re-added.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from services.discovery import agent
from services.discovery.credentials import redact
from services.discovery.health import ClusterHealth
from services.discovery.inventory import ClusterInventory
from services.discovery.publish import AppPublisher
from services.discovery.state import ClusterStore
from vessel.bus.nats_port import Bus
from vessel.contracts import subjects
from vessel.contracts.commands import DefineApp
from vessel.contracts.events import AppRecord, ClusterChanged, ClusterRecord
from vessel.kube.client import KubeCluster
from vessel.kube.errors import KubeError
from vessel.stopping import cancel_and_wait

log = logging.getLogger("vessel.discovery")
AGENT_VERSION = importlib.metadata.version("vessel")


Source = Literal["config", "registered", "agent"]
"""How a cluster came to be watched: the hub's settings, a register command, or as the
process's own cluster (discovery run as the cluster's agent)."""


@dataclass(frozen=True)
class Tuning:
    """How every cluster is watched: one set for all, so tests can make it fast."""

    debounce: float = 0.3
    """Seconds without changes before a cluster's dirty namespaces are regrouped."""
    max_delay: float = 2.0
    """At most this long after the first change, even while changes keep coming."""
    pending_grace: float = 300.0
    """A claim Pending for longer fails its app."""
    min_backoff: float = 0.5
    max_backoff: float = 10.0
    """Retry bounds after errors: an unreachable cluster is tried again this often."""
    watch_timeout: int = 30
    contact_interval: float = 30.0
    """How often `last_contact` is refreshed in KV while nothing else changes."""


@dataclass
class Connection:
    """What a watched cluster connects with: a kubeconfig file, or why there is none."""

    kubeconfig: Path | None
    server: str = ""
    problem: str = ""
    secrets: tuple[str, ...] = ()


class WatchedCluster:
    """A cluster's watches (its inventory's informers and its health reporter) and its
    agent's responder run as tasks of their own from `start` until `stop`."""

    def __init__(
        self,
        cluster_id: str,
        source: Source,
        *,
        bus: Bus,
        records: ClusterStore,
        publisher: AppPublisher,
        tuning: Tuning,
        registered: datetime | None = None,
        record: ClusterRecord | None = None,
        published: dict[str, AppRecord] | None = None,
        definitions: dict[str, DefineApp] | None = None,
    ) -> None:
        self.id = cluster_id
        self.source = source
        self.bus, self.records, self.publisher, self.tuning = bus, records, publisher, tuning
        self.registered = registered or (record.registered if record else datetime.now(UTC))
        self.record = record
        self.published: dict[str, AppRecord] = published if published is not None else {}
        self.definitions: dict[str, DefineApp] = dict(definitions or {})
        self.connection = Connection(None)
        self.health = ClusterHealth("", self._changed_soon)
        self.inventory: ClusterInventory | None = None
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._written_at = 0.0
        self._known: str | None = record.state if record and record.state != "Connecting" else None
        """The last state other than Connecting: a reconnect compares against it."""

    def _changed_soon(self) -> None:
        self._changed.set()

    async def start(self, connection: Connection, *, new: bool = False) -> None:
        """(Re)connect: a running inventory is replaced, keeping what it published. A `new`
        cluster is announced (`cluster.registered`) before any other event about it."""
        await self.stop()
        self.connection = connection
        self.health = ClusterHealth(connection.server, self._changed_soon)
        if connection.problem or connection.kubeconfig is None:
            self.health.invalid(connection.problem or f"cluster {self.id}: no kubeconfig")
        else:
            try:
                kube = KubeCluster(connection.kubeconfig, self.id)
            except KubeError as exc:
                self.health.invalid(redact(str(exc), list(connection.secrets)))
            else:
                t = self.tuning
                self.inventory = ClusterInventory(
                    self.id,
                    kube,
                    self.publisher,
                    self.health,
                    published=self.published,
                    definitions=self.definitions,
                    debounce=t.debounce,
                    max_delay=t.max_delay,
                    pending_grace=t.pending_grace,
                    min_backoff=t.min_backoff,
                    max_backoff=t.max_backoff,
                    watch_timeout=t.watch_timeout,
                )
                self._tasks.append(asyncio.create_task(self.inventory.run()))
                self._tasks.append(await agent.serve(self.bus, self.id, kube))
        await self.report(registered=new)
        self._tasks.append(asyncio.create_task(self._reporter()))

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        await cancel_and_wait(tasks)
        self.inventory = None

    def set_definitions(self, definitions: dict[str, DefineApp]) -> None:
        self.definitions = dict(definitions)
        if self.inventory is not None:
            self.inventory.set_definitions(self.definitions)

    def current(self) -> ClusterRecord:
        h = self.health
        return ClusterRecord(
            id=self.id,
            server=self.connection.server,
            source=self.source,
            state=h.state(),
            reason=h.reason(),
            conditions=h.conditions(),
            last_contact=h.last_contact,
            registered=self.registered,
            agent_version=AGENT_VERSION,
            heartbeat=datetime.now(UTC),
            heartbeat_seconds=self.tuning.contact_interval,
        )

    async def _reporter(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self.tuning.contact_interval)
            try:
                await self.report()
            except Exception:  # the bus reconnects; report again next time
                log.exception("cluster %s: could not publish its state", self.id)
                await asyncio.sleep(1.0)

    async def report(self, *, registered: bool = False) -> None:
        self._changed.clear()
        record = self.current()
        previous = self.record
        loop = asyncio.get_running_loop()
        if previous is not None:
            beat = {"last_contact": record.last_contact, "heartbeat": record.heartbeat}
            unchanged = previous.model_copy(update=beat) == record
            recent = loop.time() - self._written_at < self.tuning.contact_interval
            if unchanged and not registered and recent:
                return  # written at least every contact_interval: the agent's heartbeat
        await self.records.put(record)
        self._written_at = loop.time()
        self.record = record
        if registered:
            log.info("cluster %s registered (%s)", self.id, record.server or "no server")
            await self.announce(subjects.CLUSTER_REGISTERED)
        before = self._known
        if record.state != "Connecting":
            self._known = record.state
        if record.state == "Unreachable" and before != "Unreachable":
            log.warning("cluster %s unreachable: %s", self.id, record.reason)
            await self.announce(subjects.CLUSTER_UNREACHABLE)
        elif record.state == "Available" and before == "Unreachable":
            log.info("cluster %s recovered", self.id)
            await self.announce(subjects.CLUSTER_RECOVERED)
        elif record.reason != (previous.reason if previous else ""):
            log.info("cluster %s: %s", self.id, record.reason or "all kinds listed")

    async def announce(self, message: subjects.Message) -> None:
        await announce(self.bus, message, self.record or self.current())


async def announce(bus: Bus, message: subjects.Message, record: ClusterRecord) -> None:
    """Publish `message` (a `cluster.*` event) about `record`'s cluster."""
    await bus.publish(
        message, ClusterChanged(cluster=record), cluster=record.id, subject=f"/clusters/{record.id}"
    )
