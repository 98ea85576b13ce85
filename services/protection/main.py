"""Entry point: `vessel-protection` runs backups and restores across every cluster."""

from __future__ import annotations

import asyncio

from services.protection.backup import BackupFlow
from services.protection.context import Protection
from services.protection.operations import OperationStore
from services.protection.restore import RestoreFlow
from vessel.contracts import catalog
from vessel.contracts.events import TransferResult
from vessel.kube.client import KubeCluster
from vessel.objectstore.buckets import Buckets
from vessel.runtime import ServiceContext, run_service


async def serve(ctx: ServiceContext) -> None:
    buckets = Buckets(ctx.settings)
    p = Protection(
        bus=ctx.bus,
        clusters={c.id: KubeCluster(c.kubeconfig, c.id) for c in ctx.settings.clusters},
        open_bucket=buckets.open,
        operations=OperationStore(await ctx.bus.kv("operations")),
        inventory=await ctx.bus.kv("inventory"),
        waits=await ctx.bus.kv("restore_waits"),
    )
    backups, restores = BackupFlow(p), RestoreFlow(p)

    async def on_transfer(result: TransferResult) -> None:
        op = await p.operations.get(result.operation_id)
        if op is not None:
            await (backups if op.kind == "backup" else restores).on_transfer(result)

    tasks = [
        await ctx.bus.consume(
            "protection-commands",
            {
                catalog.CREATE_BACKUP: backups.on_command,
                catalog.CREATE_RESTORE: restores.on_command,
            },
        ),
        await ctx.bus.consume(
            "protection-events",
            {
                catalog.TRANSFER_COMPLETED: on_transfer,
                catalog.TRANSFER_FAILED: on_transfer,
                catalog.VOLUME_PROVISIONED: restores.on_volume,
            },
            deliver_new=True,
        ),
    ]
    await asyncio.gather(*tasks)


def main() -> None:
    run_service("protection", serve)
