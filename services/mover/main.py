"""Entry point: `vessel-mover --cluster ID` moves that cluster's volume data."""

from __future__ import annotations

import asyncio

from services.mover.repository import SimpleRepository
from services.mover.transfers import Mover
from vessel.contracts import catalog
from vessel.objectstore.buckets import Buckets
from vessel.runtime import ServiceContext, run_service


async def serve(ctx: ServiceContext) -> None:
    assert ctx.cluster is not None
    buckets = Buckets(ctx.settings)
    mover = Mover(
        ctx.cluster,
        ctx.bus,
        await ctx.bus.kv("transfers"),
        lambda name: SimpleRepository(buckets.open(name)),
    )
    task = await ctx.bus.consume(
        f"mover-{ctx.cluster}",
        {catalog.MOVE_TO_BUCKET: mover.to_bucket, catalog.MOVE_FROM_BUCKET: mover.from_bucket},
        cluster=ctx.cluster,
    )
    await asyncio.shield(task)


def main() -> None:
    run_service("mover", serve, per_cluster=True)
