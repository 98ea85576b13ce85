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
from vessel.buckets import BucketRegistry, kube_secret_reader
from vessel.contracts import subjects
from vessel.contracts.events import TransferResult
from vessel.contracts.group_snapshots import GroupSnapshotResult
from vessel.kube.client import KubeCluster
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
            subjects.TRANSFER_COMPLETED: on_transfer,
            subjects.TRANSFER_FAILED: on_transfer,
            subjects.VOLUME_PROVISIONED: restores.on_volume,
            subjects.OPERATION_CANCELED: restores.on_canceled,
            subjects.GROUP_SNAPSHOT_CREATED: on_group,
            subjects.GROUP_SNAPSHOT_FAILED: on_group,
            subjects.BACKUP_COMPLETED: cancels.on_backup_completed,
        },
        deliver_new=True,
    )
    composed = await ctx.bus.consume(
        "protection-composites",
        {
            subjects.BACKUP_COMPLETED: composites.on_backup,
            subjects.BACKUP_FAILED: composites.on_backup,
            subjects.RESTORE_COMPLETED: composites.on_restore,
            subjects.RESTORE_FAILED: composites.on_restore,
        },
        deliver_new=True,
    )
    tasks = [
        events,
        composed,
        await ctx.bus.consume(
            "protection-commands",
            {
                subjects.CREATE_BACKUP: backups.on_command,
                subjects.CREATE_RESTORE: restores.on_command,
                subjects.CREATE_SNAPSHOT: snapshots.on_command,
                subjects.CANCEL_OPERATION: cancels.on_command,
                subjects.CREATE_CLONE: composites.on_clone,
                subjects.CREATE_MIGRATION: composites.on_migration,
                subjects.PUT_BUCKET: bucket_admin.on_put,
                subjects.REMOVE_BUCKET: bucket_admin.on_remove,
            },
        ),
        await ctx.bus.serve(
            subjects.QUERY_CATALOG, bucket_admin.answer_catalog, queue="protection-queries"
        ),
    ]
    tasks.append(await serve_preflight(p))
    tasks.extend(await start_schedules(p, ctx.settings.schedule_grace_seconds))
    tasks.append(hook_commands)
    await asyncio.gather(*tasks)


def main() -> None:
    run_service("protection", serve)
