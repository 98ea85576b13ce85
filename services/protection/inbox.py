"""What protection listens to: the one table of its consumers, responders and loops, in
the order they start (`vessel.bus.inbox`). The handlers are the domain flows' methods.

Order matters: a consumer with `deliver_new` sees only events published after it exists,
so the event consumers start first and the answers to the first commands handled cannot
come before them. Durable names are stored consumer state in NATS and never change
(`protection-composites` keeps the clone and migrate steps' name from before "mobility").
"""

from __future__ import annotations

from services.protection.backup import BackupFlow
from services.protection.bucket_admin import BucketAdmin
from services.protection.cancel import CancelFlow
from services.protection.context import ProtectionContext
from services.protection.deletion import DeletionFlow
from services.protection.files import FileRestoreFlow
from services.protection.given_up import GivenUp
from services.protection.hook_commands import HookCommands
from services.protection.mobility import MobilityFlow
from services.protection.operation_gauges import OperationGauges
from services.protection.platform import PlatformExporter, PlatformRecovery
from services.protection.preflight import PreflightQueries
from services.protection.restore import RestoreFlow
from services.protection.results import ResultRouter
from services.protection.schedules.commands import ScheduleCommands
from services.protection.schedules.enforcement import RetentionEnforcer
from services.protection.schedules.scheduler import Scheduler
from services.protection.snapshot import SnapshotFlow
from services.protection.verification import VerificationFlow
from services.protection.watchdog import Watchdog
from vessel.bus.inbox import Consumer, Loop, Responder, Row
from vessel.contracts import queries, state, subjects
from vessel.contracts.events import RestoreEvent
from vessel.contracts.operations import Operation

QUERIES = "protection-queries"
"""The queue group of protection's responders: replicas split the queries."""


async def rows(ctx: ProtectionContext) -> list[Row]:
    """Every row of protection's inbox, its flows built on `ctx`."""
    if ctx.registry is None:
        raise ValueError("protection's inbox needs the context's bucket registry")
    snapshots = SnapshotFlow(ctx)
    backups, restores = BackupFlow(ctx, snapshots), RestoreFlow(ctx)
    files = FileRestoreFlow(ctx)
    results = ResultRouter(ctx, backups, restores, snapshots, files)
    cancels, mobility, verifications = CancelFlow(ctx), MobilityFlow(ctx), VerificationFlow(ctx)

    async def restore_ended(event: RestoreEvent) -> None:  # a step of a composite, maybe
        await mobility.on_restore(event)
        await verifications.on_restore(event)

    async def failed(op: Operation) -> None:  # ended by its deadline, or given up
        await restores.failed_elsewhere(op)
        await verifications.failed_elsewhere(op)

    buckets = BucketAdmin(ctx.bus, await ctx.kv(state.BUCKETS), ctx.registry)
    hooks = HookCommands(ctx.bus, await ctx.hook_store())
    schedule_specs, runs = await ctx.kv(state.SCHEDULES), await ctx.kv(state.SCHEDULE_RUNS)
    schedules = ScheduleCommands(ctx.bus, schedule_specs, runs)
    deletion = DeletionFlow(ctx, await ctx.snapshot_store())
    verified = await ctx.kv(state.VERIFICATIONS)
    retention = RetentionEnforcer(ctx.bus, ctx.operations, schedule_specs, runs, verified)
    locks = await ctx.kv(state.PROTECTION_LOCKS)
    definitions = await ctx.kv(state.APP_DEFINITIONS)
    scheduler = Scheduler(
        ctx.bus, schedule_specs, runs, locks, grace=ctx.schedule_grace, definitions=definitions
    )
    gauges = OperationGauges(await ctx.kv(state.OPERATIONS))
    given_up = GivenUp(ctx.operations, failed=failed)
    watchdog = Watchdog(ctx.bus, gauges, ctx.operations, ctx.operation_stall, failed=failed)
    return [
        Consumer(
            "protection-events",
            {
                subjects.TRANSFER_COMPLETED: results.on_transfer,
                subjects.TRANSFER_FAILED: results.on_transfer,
                subjects.VOLUME_PROVISIONED: restores.on_volume,
                subjects.OPERATION_CANCELED: restores.on_canceled,
                subjects.GROUP_SNAPSHOT_CREATED: results.on_group,
                subjects.GROUP_SNAPSHOT_FAILED: results.on_group,
                subjects.BACKUP_COMPLETED: cancels.on_backup_completed,
            },
            deliver_new=True,
            gave_up=given_up,
        ),
        Consumer(
            "protection-composites",
            {
                subjects.BACKUP_COMPLETED: mobility.on_backup,
                subjects.BACKUP_FAILED: mobility.on_backup,
                subjects.RESTORE_COMPLETED: restore_ended,
                subjects.RESTORE_FAILED: restore_ended,
            },
            deliver_new=True,
            gave_up=given_up,
        ),
        Consumer(
            "protection-retention",
            {
                subjects.BACKUP_COMPLETED: retention.on_run_ended,
                subjects.BACKUP_FAILED: retention.on_run_ended,
                subjects.SNAPSHOT_COMPLETED: retention.on_run_ended,
                subjects.SNAPSHOT_FAILED: retention.on_run_ended,
                subjects.SNAPSHOTS_FORGOTTEN: deletion.on_forgotten,
            },
            deliver_new=True,
            gave_up=given_up,
        ),
        Consumer(
            "protection-commands",
            {
                subjects.CREATE_BACKUP: backups.on_command,
                subjects.CREATE_RESTORE: restores.on_command,
                subjects.RESTORE_FILES: files.on_command,
                subjects.CREATE_VERIFICATION: verifications.on_command,
                subjects.RECOVER_PLATFORM: PlatformRecovery(ctx).on_recover,
                subjects.CREATE_SNAPSHOT: snapshots.on_command,
                subjects.CANCEL_OPERATION: cancels.on_command,
                subjects.CREATE_CLONE: mobility.on_clone,
                subjects.CREATE_MIGRATION: mobility.on_migration,
                subjects.PUT_BUCKET: buckets.on_put,
                subjects.REMOVE_BUCKET: buckets.on_remove,
            },
            gave_up=given_up,
        ),
        Consumer(
            "protection-deletion",
            {
                subjects.DELETE_BACKUP: deletion.on_delete_backup,
                subjects.DELETE_SNAPSHOT: deletion.on_delete_snapshot,
            },
            gave_up=given_up,
        ),
        Consumer(
            "protection-schedules",
            {
                subjects.PUT_SCHEDULE: schedules.on_put,
                subjects.REMOVE_SCHEDULE: schedules.on_remove,
            },
            gave_up=given_up,
        ),
        Consumer(
            "protection-hooks",
            {subjects.PUT_HOOK: hooks.on_put, subjects.REMOVE_HOOK: hooks.on_remove},
            gave_up=given_up,
        ),
        Responder(queries.QUERY_CATALOG, buckets.answer_catalog, queue=QUERIES),
        Responder(queries.QUERY_BACKUP_FILES, files.on_lookup, queue=QUERIES),
        Responder(queries.QUERY_RESTORE_PREFLIGHT, PreflightQueries(ctx).on_request, queue=QUERIES),
        Loop("protection-scheduler", scheduler.run),
        Loop("platform export", (await PlatformExporter.on(ctx, ctx.registry)).run),
        Loop("operation gauges", gauges.run),
        Loop("operation deadlines", watchdog.run),
    ]
