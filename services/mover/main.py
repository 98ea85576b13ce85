"""Entry point: `vessel-mover --cluster ID` moves that cluster's volume data."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from services.mover.buckets import MoverBuckets
from services.mover.cancels import BUCKET as CANCELS_BUCKET
from services.mover.cancels import Cancels
from services.mover.forget import Forgetter
from services.mover.receive import Receiver
from services.mover.send import Sender
from services.mover.transfers import Mover
from vessel.buckets import BucketRegistry, kube_secret_reader
from vessel.contracts import subjects
from vessel.contracts.commands import ForgetSnapshots
from vessel.contracts.events import SnapshotsForgotten, TransferResult
from vessel.kube.client import KubeCluster
from vessel.runtime import ServiceContext, run_service

Direction = Literal["backup", "restore", "copy"]


async def serve(ctx: ServiceContext) -> None:
    assert ctx.cluster is not None
    own = ctx.settings.cluster(ctx.cluster)
    registry = BucketRegistry(
        ctx.settings,
        await ctx.bus.kv("buckets"),
        kube_secret_reader(KubeCluster(own.kubeconfig, own.id)),
    )
    buckets = MoverBuckets(registry)
    data_for, prepared = buckets.data_for, buckets.preparing

    def refuse(direction: Direction) -> Callable[[Any, str], Awaitable[None]]:
        async def answer(cmd: Any, error: str) -> None:
            result = TransferResult(
                transfer_id=cmd.transfer_id,
                operation_id=cmd.operation_id,
                cluster=ctx.cluster,
                direction=direction,
                error=error,
            )
            await ctx.bus.publish(subjects.TRANSFER_FAILED, result)

        return answer

    async def unforgotten(cmd: ForgetSnapshots, error: str) -> None:
        answer = SnapshotsForgotten(
            operation_id=cmd.operation_id,
            cluster=ctx.cluster,
            bucket=cmd.bucket,
            snapshot_ids=list(cmd.snapshot_ids),
            error=error,
        )
        await ctx.bus.publish(subjects.SNAPSHOTS_FORGOTTEN, answer)

    cancels = Cancels(await ctx.bus.kv(CANCELS_BUCKET))
    mover = Mover(ctx.cluster, ctx.bus, await ctx.bus.kv("transfers"), data_for, cancels)
    # Direct transfers: this mover sends its snapshots and receives other clusters' ones.
    sender = Sender(ctx.cluster, ctx.bus, await ctx.bus.kv("transfers"), data_for, cancels)
    receiving = await Receiver(ctx.cluster, ctx.bus, buckets.prepare).start()
    stopping = await ctx.bus.consume(
        f"mover-{ctx.cluster}-cancels",
        {subjects.OPERATION_CANCELED: cancels.on_canceled},
        deliver_new=True,
    )
    task = await ctx.bus.consume(
        f"mover-{ctx.cluster}",
        {
            subjects.MOVE_TO_BUCKET: prepared(mover.to_bucket, ("bucket",), refuse("backup")),
            subjects.MOVE_FROM_BUCKET: prepared(mover.from_bucket, ("bucket",), refuse("restore")),
            subjects.COPY_SNAPSHOT: prepared(
                mover.copy, ("source_bucket", "target_bucket"), refuse("copy")
            ),
            subjects.SEND_SNAPSHOT: prepared(sender.send, ("source_bucket",), refuse("copy")),
        },
        cluster=ctx.cluster,
    )
    # Its own consumer: a prune waiting for running backups never holds up transfers.
    forgetting = await ctx.bus.consume(
        f"mover-{ctx.cluster}-forget",
        {
            subjects.FORGET_SNAPSHOTS: prepared(
                Forgetter(ctx.cluster, ctx.bus, data_for).on_forget, ("bucket",), unforgotten
            )
        },
        cluster=ctx.cluster,
    )
    await asyncio.shield(asyncio.gather(task, stopping, forgetting, receiving))


def main() -> None:
    run_service("mover", serve, per_cluster=True)
