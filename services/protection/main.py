"""Entry point: `vessel-protection` runs backups and restores across every cluster.

Wiring only: the registered clusters (each through its agent), the buckets, the KV
buckets the flows share, the context built from them, and the inbox (`inbox.py`) started
on it. Protection opens no kubeconfig: even the Secrets that hold bucket credentials are
read through the agent of its home cluster (`secrets_cluster`, else the first configured).
"""

from __future__ import annotations

from datetime import timedelta

from services.protection import inbox
from services.protection.agents import AgentClusters, AgentKube
from services.protection.bucket_keys import bucket_opener
from services.protection.context import ProtectionContext
from services.protection.state.operations import OperationStore
from vessel.buckets import BucketRegistry, kube_secret_reader
from vessel.bus.inbox import listen
from vessel.contracts import state
from vessel.runtime import ServiceContext, run_service


async def serve(service: ServiceContext) -> None:
    settings, bus = service.settings, service.bus
    records, patience = await bus.kv(state.CLUSTERS.name), settings.agent_wait_seconds
    home = settings.secrets_cluster or next((c.id for c in settings.clusters), None)
    registry = BucketRegistry(
        settings,
        await bus.kv(state.BUCKETS.name),
        kube_secret_reader(AgentKube(bus, home, records, patience)) if home else None,
    )
    ctx = ProtectionContext(
        bus=bus,
        clusters=AgentClusters(bus, records, patience),
        open_bucket=bucket_opener(registry),
        operations=OperationStore(
            await bus.kv(state.OPERATIONS.name), activity=await bus.kv(state.ACTIVITY.name)
        ),
        inventory=await bus.kv(state.INVENTORY.name),
        waits=await bus.kv(state.RESTORE_WAITS.name),
        heads=await bus.kv(state.CATALOG_HEADS.name),
        registry=registry,
        schedule_grace=timedelta(seconds=settings.schedule_grace_seconds),
        operation_stall=timedelta(seconds=settings.operation_stall_seconds),
        store_retry=settings.store_retry_seconds,
        verification_slots=settings.verification_slots,
        verification_quota=dict(settings.verification_quota),
    )
    await listen(bus, await inbox.rows(ctx))


def main() -> None:
    run_service("protection", serve)
