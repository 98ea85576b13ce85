"""What every servicer of the gateway shares: the settings, the bus, the KV buckets it
reads (owned by discovery, the provisioners and protection), the stores it owns, the
buckets it reads catalogs from, and the lookups every API makes the same way: an
operation, an app in the caller's scope, a snapshot of an app, a known bucket.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.gateway.auth import authz
from services.gateway.errors import not_found
from services.gateway.reads.remote_bucket import GatewayBuckets
from services.gateway.state import ActivityLog, Requests, TokenStore
from services.gateway.validation import require_ids
from vessel.bus.nats_port import Bus, KeyValue
from vessel.config import VesselSettings
from vessel.contracts import state
from vessel.contracts.events import AppRecord
from vessel.contracts.operations import Operation
from vessel.contracts.protection import AppSnapshotRecord


@dataclass
class GatewayContext:
    settings: VesselSettings
    bus: Bus
    inventory: KeyValue
    clusters: KeyValue
    volumes: KeyValue
    snapshots: KeyValue
    """The provisioners' backend snapshots (not app snapshots)."""
    operations: KeyValue
    app_snapshots: KeyValue
    schedules: KeyValue
    hooks: KeyValue
    buckets: GatewayBuckets
    requests: Requests
    tokens: TokenStore
    activity: ActivityLog
    verifications: KeyValue
    """Protection's record of each backup's last restore verification."""

    @classmethod
    async def open(cls, settings: VesselSettings, bus: Bus) -> GatewayContext:
        """Opens every KV bucket the gateway reads or owns (created when missing)."""

        async def kv(bucket: state.KvBucket) -> KeyValue:
            return await bus.kv(bucket.name)

        return cls(
            settings,
            bus,
            inventory=await kv(state.INVENTORY),
            clusters=await kv(state.CLUSTERS),
            volumes=await kv(state.VOLUMES),
            snapshots=await kv(state.SNAPSHOTS),
            operations=await kv(state.OPERATIONS),
            app_snapshots=await kv(state.APP_SNAPSHOTS),
            schedules=await kv(state.SCHEDULES),
            hooks=await kv(state.HOOKS),
            buckets=GatewayBuckets(settings, bus, await kv(state.BUCKETS)),
            requests=Requests(await kv(state.REQUESTS)),
            tokens=TokenStore(await kv(state.TOKENS)),
            activity=ActivityLog(await kv(state.ACTIVITY)),
            verifications=await kv(state.VERIFICATIONS),
        )

    async def operation(self, op_id: str) -> Operation | None:
        """Protection's record of the operation, else the request submitting it."""
        entry = await self.operations.get(op_id)
        if entry is not None:
            return Operation.model_validate_json(entry.value)
        return await self.requests.submitted(op_id)

    async def app(self, app_id: str) -> AppRecord:
        """The app, when it exists and is wholly in the caller's scope."""
        entry = await self.inventory.get(f"apps.{app_id}")
        if entry is None:
            raise not_found(f"app {app_id}")
        app = AppRecord.model_validate_json(entry.value)
        authz.require_scope(authz.current(), authz.app_targets(app))
        return app

    async def snapshot_of(self, app_id: str, snapshot_id: str) -> AppSnapshotRecord:
        """An app snapshot of this app (NOT_FOUND otherwise: another app's is not revealed)."""
        entry = await self.app_snapshots.get(snapshot_id)
        record = None if entry is None else AppSnapshotRecord.model_validate_json(entry.value)
        if record is None or record.app_id != app_id:
            raise not_found(f"snapshot {snapshot_id} of app {app_id}")
        return record

    async def cluster_ids(self) -> list[str]:
        """Clusters of the settings and those discovery registered."""
        ids = {c.id for c in self.settings.clusters}
        ids.update(await self.clusters.keys())
        return sorted(ids)

    async def known_bucket(self, field: str, name: str) -> None:
        """A well-formed name of a bucket neither configured nor registered is NOT_FOUND."""
        require_ids((field, name, "a bucket name", True))
        if not await self.buckets.known(name):
            raise not_found(f"bucket {name}")
