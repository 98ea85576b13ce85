"""Entry point: `vessel-discovery` keeps the inventory of every registered cluster.

Wiring only: the context over the bus and the KV buckets, the clusters loaded before the
inbox starts (a command must find every cluster), and a stop in order.
"""

from __future__ import annotations

import asyncio
import logging

from services.discovery.context import DiscoveryContext
from services.discovery.inbox import rows
from services.discovery.registry import ClusterRegistry
from vessel.bus import inbox
from vessel.runtime import ServiceContext, run_service

log = logging.getLogger("vessel.discovery")
QUIET_LOGGERS = {"urllib3.connectionpool": logging.ERROR}
"""Each cluster holds a watch per kind, more than the kube client's connection pool keeps:
urllib3 would warn "Connection pool is full, discarding connection" after every watch."""


async def start(ctx: DiscoveryContext) -> list[asyncio.Task[None]]:
    """Loads the clusters, then starts the inbox; returns its rows' tasks."""
    for name, level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)
    await ClusterRegistry(ctx).load()
    tasks = await inbox.start(ctx.bus, rows(ctx))
    log.info("discovery serving %d clusters", len(ctx.watched))
    return tasks


async def stop(tasks: list[asyncio.Task[None]]) -> None:
    """Stops the rows one by one in start order. The command consumer goes last, right
    before the bus is drained: a pull request cancelled earlier would get its late expiry
    notice queued, and the drain would wait for it to be read."""
    for task in tasks:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def serve(process: ServiceContext) -> None:
    ctx = await DiscoveryContext.open(process.bus, process.settings)
    tasks = await start(ctx)
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        await stop(tasks)
    for task in done:
        task.result()  # a row that failed ends the service with its error


def main() -> None:
    run_service("discovery", serve)
