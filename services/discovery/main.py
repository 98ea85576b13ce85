"""Entry point: `vessel-discovery` keeps the inventory of every configured cluster."""

from __future__ import annotations

import asyncio

from services.discovery.inventory import ClusterInventory
from vessel.kube.client import KubeCluster
from vessel.runtime import ServiceContext, run_service


async def serve(ctx: ServiceContext) -> None:
    kv = await ctx.bus.kv("inventory")
    inventories = [
        ClusterInventory(c.id, KubeCluster(c.kubeconfig, c.id), ctx.bus, kv)
        for c in ctx.settings.clusters
    ]
    await asyncio.gather(*(i.run() for i in inventories))


def main() -> None:
    run_service("discovery", serve)
