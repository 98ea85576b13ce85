"""The discovery service: cluster registry, inventories, commands and queries."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from services.discovery.credentials import CredentialStore
from services.discovery.queries import answer
from services.discovery.registry import Buckets, ClusterRegistry
from services.discovery.rpc import QueryServer
from services.discovery.runtime import Tuning
from vessel.bus.nats_port import Bus
from vessel.config import VesselSettings
from vessel.contracts import subjects
from vessel.contracts.commands import DefineApp, RegisterCluster, RemoveCluster, UndefineApp

log = logging.getLogger("vessel.discovery")
QUIET_LOGGERS = {"urllib3.connectionpool": logging.ERROR}
"""Each cluster holds a watch per kind, more than the kube client's connection pool keeps:
urllib3 would warn "Connection pool is full, discarding connection" after every watch."""


@dataclass(frozen=True)
class BucketNames:
    inventory: str = "inventory"
    clusters: str = "clusters"
    definitions: str = "app-definitions"


class DiscoveryService:
    def __init__(
        self,
        bus: Bus,
        settings: VesselSettings,
        *,
        tuning: Tuning | None = None,
        buckets: BucketNames | None = None,
        durable: str = "discovery",
    ) -> None:
        self.bus, self.settings = bus, settings
        self.tuning = tuning or Tuning()
        self.names = buckets or BucketNames()
        self.durable = durable
        self.registry: ClusterRegistry | None = None
        self.queries: QueryServer | None = None
        self._consumer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        for name, level in QUIET_LOGGERS.items():
            logging.getLogger(name).setLevel(level)
        kv = Buckets(
            inventory=await self.bus.kv(self.names.inventory),
            clusters=await self.bus.kv(self.names.clusters),
            definitions=await self.bus.kv(self.names.definitions),
        )
        registry = ClusterRegistry(
            self.bus, kv, CredentialStore(self.settings.state_dir), self.tuning
        )
        self.registry = registry
        await registry.load(self.settings.clusters)

        async def register(cmd: RegisterCluster) -> None:
            try:
                await registry.register(cmd)
            except Exception:  # never retried, so never dead-lettered with its kubeconfig
                log.exception("cluster %s: register/update failed", cmd.cluster)

        async def remove(cmd: RemoveCluster) -> None:
            await registry.remove(cmd)

        async def define(cmd: DefineApp) -> None:
            await registry.define(cmd)

        async def undefine(cmd: UndefineApp) -> None:
            await registry.undefine(cmd)

        self._consumer = await self.bus.consume(
            self.durable,
            {
                subjects.REGISTER_CLUSTER: register,
                subjects.UPDATE_CLUSTER: register,
                subjects.REMOVE_CLUSTER: remove,
                subjects.DEFINE_APP: define,
                subjects.UNDEFINE_APP: undefine,
            },
        )

        async def handle(subject: str, body: bytes) -> bytes:
            return answer(subject, body, registry.apps, registry.clusters)

        self.queries = QueryServer(
            self.bus, "vessel.query.discovery.>", handle, durable=f"{self.durable}-queries"
        )
        await self.queries.start()
        log.info("discovery serving %d clusters", len(registry.runtimes))

    async def close(self) -> None:
        if self.queries is not None:
            await self.queries.close()
        if self.registry is not None:
            await self.registry.close()
        # Last, right before the bus is drained: a pull request cancelled earlier would get
        # its late expiry notice queued, and the drain would wait for it to be read.
        if self._consumer is not None:
            self._consumer.cancel()
            await asyncio.gather(self._consumer, return_exceptions=True)
