"""Entry point: `vessel-discovery` keeps the inventory of every registered cluster."""

from __future__ import annotations

import asyncio

from services.discovery.service import DiscoveryService
from vessel.runtime import ServiceContext, run_service


async def serve(ctx: ServiceContext) -> None:
    service = DiscoveryService(ctx.bus, ctx.settings)
    await service.start()
    try:
        await asyncio.Event().wait()
    finally:
        await service.close()


def main() -> None:
    run_service("discovery", serve)
