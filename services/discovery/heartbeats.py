"""On the hub: the clusters whose agent runs in the cluster, watched through their
heartbeats (the agent rewrites its cluster's record every `heartbeat_seconds`).

An agent that misses `AWAY_AFTER_BEATS` beats makes its cluster Away: `cluster.unreachable`
is published once, with a reason naming the last heartbeat, and `cluster.recovered` when
beats come again. The record itself stays the agent's (one writer per key); readers tell
Away from its heartbeat, as the gateway does.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from services.discovery.cluster import announce
from services.discovery.context import DiscoveryContext
from vessel.contracts import subjects

log = logging.getLogger("vessel.discovery")


class AgentHeartbeats:
    def __init__(self, ctx: DiscoveryContext) -> None:
        self.ctx = ctx
        self.away: set[str] = set()
        """Clusters announced unreachable for a missing agent."""

    async def run(self) -> None:
        while True:
            try:
                await self.check(datetime.now(UTC))
            except Exception:  # the bus reconnects; check again next time
                log.exception("checking the agents' heartbeats failed")
            await asyncio.sleep(self.ctx.tuning.contact_interval)

    async def check(self, now: datetime) -> None:
        records = await self.ctx.stores.clusters.read_all()
        for record in records:
            if record.source != "agent":
                continue
            away = record.away(now)
            if away and record.id not in self.away:
                self.away.add(record.id)
                log.warning("cluster %s is away: %s", record.id, record.away_reason())
                gone = record.model_copy(
                    update={"state": "Unreachable", "reason": record.away_reason()}
                )
                await announce(self.ctx.bus, subjects.CLUSTER_UNREACHABLE, gone)
            elif not away and record.id in self.away:
                self.away.discard(record.id)
                log.info("cluster %s: its agent reports again", record.id)
                await announce(self.ctx.bus, subjects.CLUSTER_RECOVERED, record)
        self.away &= {r.id for r in records}  # a cluster removed meanwhile is forgotten
