"""A test lab for discovery: emulated clusters (optionally behind a `KubeProxy`), a
discovery service on its own bus connection, its KV buckets and the events it published."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from services.discovery.cluster import Tuning
from services.discovery.context import DiscoveryContext
from services.discovery.main import start, stop
from services.discovery.state import BucketNames
from tests.discovery.kubeproxy import KubeProxy, kubeconfig_text
from vessel.bus.nats_port import Bus, KeyValue
from vessel.config import ClusterConfig, VesselSettings
from vessel.contracts.envelope import CloudEvent
from vessel.contracts.events import AppRecord, ClusterRecord
from vessel.kube.client import KubeCluster
from vessel_dev.emulators.kube import KubeEmulator

FAST = Tuning(
    debounce=0.2,
    max_delay=2.0,
    min_backoff=0.1,
    max_backoff=0.4,
    watch_timeout=5,
    contact_interval=1.0,
)


async def eventually(
    check: Callable[[], Any], within: float = 10.0, what: str = "condition"
) -> Any:
    """Poll `check` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)


@dataclass
class Cluster:
    id: str
    emulator: KubeEmulator
    token: str
    kube: KubeCluster
    """A client straight to the emulator, for the test's own writes."""
    kubeconfig: Path
    """What discovery connects with (through the proxy, when there is one)."""
    proxy: KubeProxy | None = None

    def config(self, agent: Literal["hub", "cluster"] = "hub") -> ClusterConfig:
        return ClusterConfig(id=self.id, kubeconfig=self.kubeconfig, agent=agent)

    async def create(self, *objs: dict[str, Any]) -> None:
        for obj in objs:
            await self.kube.create(obj)


@dataclass
class Running:
    """A discovery instance: its context and the tasks of its inbox."""

    ctx: DiscoveryContext
    tasks: list[asyncio.Task[None]]


@dataclass
class Lab:
    """One test's clusters, discovery instance, KV buckets and events."""

    bus: Bus
    tmp: Path
    nats_url: str
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:6]}")
    clusters: list[Cluster] = field(default_factory=list)
    services: list[Running] = field(default_factory=list)
    events: list[CloudEvent] = field(default_factory=list)

    @property
    def names(self) -> BucketNames:
        p = self.prefix
        return BucketNames(f"{p}-inventory", f"{p}-clusters", f"{p}-definitions")

    async def cluster(
        self, name: str, *, proxy: bool = False, history: int = 10_000, controllers: bool = True
    ) -> Cluster:
        cid = f"{self.prefix}-{name}"
        token = f"token-{uuid.uuid4().hex}"
        emulator = KubeEmulator(token=token, history=history, controllers=controllers)
        emulator.start()
        direct = self.tmp / f"{cid}.direct.kubeconfig"
        emulator.write_kubeconfig(direct)
        kubeconfig, front = direct, None
        if proxy:
            front = KubeProxy(emulator.url, emulator.client_ssl_context())
            await front.start()
            kubeconfig = self.tmp / f"{cid}.kubeconfig"
            kubeconfig.write_text(kubeconfig_text(front.url, token))
        cluster = Cluster(cid, emulator, token, KubeCluster(direct, cid), kubeconfig, front)
        self.clusters.append(cluster)
        return cluster

    async def discovery(
        self,
        configured: Sequence[Cluster] = (),
        tuning: Tuning = FAST,
        *,
        agent_of: Cluster | None = None,
        in_cluster: Sequence[Cluster] = (),
    ) -> Running:
        """A discovery on the hub watching `configured` (and leaving `in_cluster` to their
        own agents), or, with `agent_of`, that cluster's own agent."""
        clusters = [c.config() for c in configured]
        clusters += [c.config("cluster") for c in (*in_cluster, *([agent_of] if agent_of else []))]
        settings = VesselSettings(clusters=clusters, state_dir=self.tmp / "state")
        # Its own connection, as in its own process: closed right after the service, so
        # no late reply to a cancelled pull request is left for a drain to wait on.
        bus = Bus(source=f"/clusters/{self.prefix}/discovery")
        await bus.connect(self.nats_url, name="vessel-discovery-test")
        ctx = await DiscoveryContext.open(bus, settings, tuning=tuning, buckets=self.names)
        service = Running(ctx, [])
        self.services.append(service)
        service.tasks = await start(ctx, agent_of.id if agent_of else None)
        return service

    async def stop_discovery(self) -> None:
        for service in list(self.services):
            await self.stop(service)

    async def stop(self, service: Running) -> None:
        await stop(service.tasks)
        # Not `Bus.close()`: its drain waits 30 s for a message a cancelled pull fetch
        # took from the subscription's queue but never marked done (nats-py), which
        # happens when a consumer is cancelled just as a fetch expires.
        if service.ctx.bus._nc is not None:
            await service.ctx.bus._nc.close()
        self.services.remove(service)

    async def kv(self, which: str) -> KeyValue:
        return await self.bus.kv(getattr(self.names, which))

    async def app(self, app_id: str) -> AppRecord | None:
        entry = await (await self.kv("inventory")).get(f"apps.{app_id}")
        return AppRecord.model_validate_json(entry.value) if entry else None

    async def record(self, cluster_id: str) -> ClusterRecord | None:
        entry = await (await self.kv("clusters")).get(cluster_id)
        return ClusterRecord.model_validate_json(entry.value) if entry else None

    async def values(self) -> list[bytes]:
        """Every value in the test's KV buckets."""
        out = []
        for which in ("inventory", "clusters", "definitions"):
            kv = await self.kv(which)
            for key in await kv.keys():
                entry = await kv.get(key)
                if entry is not None:
                    out.append(entry.value)
        return out

    def of(self, kind: str, about: str | None = None) -> list[dict[str, Any]]:
        """Data of the events of type `discovery.<kind>` (e.g. "app.changed"), optionally
        only those whose subject ends with `about` (an app or cluster id)."""
        wanted = f"io.vessel.discovery.{kind}.v1"
        return [
            e.data
            for e in self.events
            if e.type == wanted
            and e.subject is not None
            and (about is None or e.subject.endswith(f"/{about}"))
            and e.subject.startswith(f"/clusters/{self.prefix}-")
        ]
