"""Entry point: `vessel-protection` runs backups and restores across every cluster."""

from __future__ import annotations

import asyncio

from services.protection.backup import BackupFlow
from services.protection.bucket_admin import BucketAdmin
from services.protection.bucket_keys import bucket_opener
from services.protection.cancel import CancelFlow
from services.protection.compose import CompositeFlow
from services.protection.context import Protection
from services.protection.hook_store import start_hooks
from services.protection.operations import OperationStore
from services.protection.preflight import serve_preflight
from services.protection.restore import RestoreFlow
from services.protection.schedules.wiring import start_schedules
from services.protection.snapshot import SnapshotFlow
from vessel.contracts import catalog
from vessel.contracts.events import TransferResult
from vessel.contracts.group_snapshots import GroupSnapshotResult
from vessel.kube.client import KubeCluster
from vessel.objectstore.registry import BucketRegistry, kube_secret_reader
from vessel.runtime import ServiceContext, run_service


async def serve(ctx: ServiceContext) -> None:
    clusters = {c.id: KubeCluster(c.kubeconfig, c.id) for c in ctx.settings.clusters}
    home = ctx.settings.secrets_cluster or next(iter(clusters), None)
    registry = BucketRegistry(
        ctx.settings,
        await ctx.bus.kv("buckets"),
        kube_secret_reader(clusters[home]) if home in clusters else None,
    )

    p = Protection(
        bus=ctx.bus,
        clusters=clusters,
        open_bucket=bucket_opener(registry),
        operations=OperationStore(
            await ctx.bus.kv("operations"), activity=await ctx.bus.kv("activity")
        ),
        inventory=await ctx.bus.kv("inventory"),
        waits=await ctx.bus.kv("restore_waits"),
        heads=await ctx.bus.kv("catalog_heads"),
    )
    p.hooks, hook_commands = await start_hooks(ctx.bus)
    snapshots = SnapshotFlow(p)
    backups, restores = BackupFlow(p, snapshots), RestoreFlow(p)
    cancels = CancelFlow(p)
    composites = CompositeFlow(p)
    bucket_admin = BucketAdmin(ctx.bus, await ctx.bus.kv("buckets"), registry)

    async def on_transfer(result: TransferResult) -> None:
        op = await p.operations.get(result.operation_id)
        if op is not None:
            await (backups if op.kind == "backup" else restores).on_transfer(result)

    async def on_group(result: GroupSnapshotResult) -> None:
        op = await p.operations.get(result.operation_id)
        if op is not None:
            await (backups.on_group if op.kind == "backup" else snapshots.on_group)(result)

    # The events consumer first: it sees only events published after it exists, and the
    # answers to the first commands handled must not come before it.
    events = await ctx.bus.consume(
        "protection-events",
        {
            catalog.TRANSFER_COMPLETED: on_transfer,
            catalog.TRANSFER_FAILED: on_transfer,
            catalog.VOLUME_PROVISIONED: restores.on_volume,
            catalog.OPERATION_CANCELED: restores.on_canceled,
            catalog.GROUP_SNAPSHOT_CREATED: on_group,
            catalog.GROUP_SNAPSHOT_FAILED: on_group,
            catalog.BACKUP_COMPLETED: cancels.on_backup_completed,
        },
        deliver_new=True,
    )
    composed = await ctx.bus.consume(
        "protection-composites",
        {
            catalog.BACKUP_COMPLETED: composites.on_backup,
            catalog.BACKUP_FAILED: composites.on_backup,
            catalog.RESTORE_COMPLETED: composites.on_restore,
            catalog.RESTORE_FAILED: composites.on_restore,
        },
        deliver_new=True,
    )
    tasks = [
        events,
        composed,
        await ctx.bus.consume(
            "protection-commands",
            {
                catalog.CREATE_BACKUP: backups.on_command,
                catalog.CREATE_RESTORE: restores.on_command,
                catalog.CREATE_SNAPSHOT: snapshots.on_command,
                catalog.CANCEL_OPERATION: cancels.on_command,
                catalog.CREATE_CLONE: composites.on_clone,
                catalog.CREATE_MIGRATION: composites.on_migration,
                catalog.PUT_BUCKET: bucket_admin.on_put,
                catalog.REMOVE_BUCKET: bucket_admin.on_remove,
            },
        ),
        await ctx.bus.serve(
            catalog.QUERY_CATALOG, bucket_admin.answer_catalog, queue="protection-queries"
        ),
    ]
    tasks.append(await serve_preflight(p))
    tasks.extend(await start_schedules(p, ctx.settings.schedule_grace_seconds))
    tasks.append(hook_commands)
    await asyncio.gather(*tasks)


def main() -> None:
    run_service("protection", serve)
