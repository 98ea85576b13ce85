"""Entry point: `vessel-mover --cluster ID` moves that cluster's volume data."""

from __future__ import annotations

import asyncio
from functools import cache

from services.mover.transfers import Mover
from services.mover.volumes import RepositoryData
from vessel.contracts import catalog
from vessel.objectstore.buckets import Buckets
from vessel.runtime import ServiceContext, run_service


async def serve(ctx: ServiceContext) -> None:
    assert ctx.cluster is not None
    buckets = Buckets(ctx.settings)

    @cache
    def data_for(name: str) -> RepositoryData:
        config = ctx.settings.bucket(name)
        like = data_for(config.like) if config.like else None
        return RepositoryData(buckets.open(name), config.repository, config.password(), like)

    mover = Mover(ctx.cluster, ctx.bus, await ctx.bus.kv("transfers"), data_for)
    task = await ctx.bus.consume(
        f"mover-{ctx.cluster}",
        {
            catalog.MOVE_TO_BUCKET: mover.to_bucket,
            catalog.MOVE_FROM_BUCKET: mover.from_bucket,
            catalog.COPY_SNAPSHOT: mover.copy,
        },
        cluster=ctx.cluster,
    )
    await asyncio.shield(task)


def main() -> None:
    run_service("mover", serve, per_cluster=True)
