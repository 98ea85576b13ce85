"""Entry point: `vessel-discovery` keeps the inventory of every registered cluster (on the
hub), or, with `--cluster ID`, is that cluster's agent in the cluster.

Wiring only: the context over the bus and the KV buckets, the clusters loaded before the
inbox starts (a command must find every cluster), and a stop in order.
"""

from __future__ import annotations

import asyncio
import logging

from services.discovery.context import DiscoveryContext
from services.discovery.inbox import agent_rows, rows
from services.discovery.joining import Joins
from services.discovery.registry import ClusterRegistry
from vessel.bus import inbox
from vessel.contracts import state
from vessel.runtime import ServiceContext, run_service
from vessel.stopping import cancel_and_wait

log = logging.getLogger("vessel.discovery")
QUIET_LOGGERS = {"urllib3.connectionpool": logging.ERROR}
"""Each cluster holds a watch per kind, more than the kube client's connection pool keeps:
urllib3 would warn "Connection pool is full, discarding connection" after every watch."""


async def start(ctx: DiscoveryContext, agent_of: str | None = None) -> list[asyncio.Task[None]]:
    """Loads the clusters (or, as the agent of `agent_of`, that one), then starts the inbox;
    returns its rows' tasks."""
    for name, level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)
    registry = ClusterRegistry(ctx)
    if agent_of is None:
        # The clusters' agents may not make KV buckets: the hub's discovery makes them all,
        # beside loading its clusters (which must not wait for it).
        buckets = asyncio.create_task(ctx.bus.ensure_buckets(b.name for b in state.KV_BUCKETS))
        kv = await ctx.bus.kv(state.CLUSTER_JOINS.name)
        ctx.joins = Joins(kv, ctx.settings, ctx.knows)
        await registry.load()
        await buckets
        tasks = await inbox.start(ctx.bus, rows(ctx))
        log.info("discovery serving %d clusters", len(ctx.watched))
        return tasks
    cluster = await registry.load_agent(agent_of)
    tasks = await inbox.start(ctx.bus, agent_rows(registry, cluster))
    log.info("discovery serving cluster %s as its agent", agent_of)
    return tasks


async def stop(tasks: list[asyncio.Task[None]]) -> None:
    """Stops the rows one by one in start order. The command consumer goes last, right
    before the bus is drained: a pull request cancelled earlier would get its late expiry
    notice queued, and the drain would wait for it to be read."""
    for task in tasks:
        await cancel_and_wait([task])


async def serve(process: ServiceContext) -> None:
    ctx = await DiscoveryContext.open(process.bus, process.settings)
    tasks = await start(ctx, process.cluster)
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        await stop(tasks)
    for task in done:
        task.result()  # a row that failed ends the service with its error


def main() -> None:
    run_service(
        "discovery",
        serve,
        cluster_help="Run as this cluster's agent, in the cluster: watch it alone and make the "
        "hub's Kubernetes calls on it (default: the hub's discovery)",
    )
