"""Publishing app records: the `inventory` KV bucket (owned by discovery) and the
`app.discovered` / `app.changed` / `app.removed` events, with a compact diff."""

from __future__ import annotations

from services.discovery.diff import app_diff, changed_fields
from services.discovery.state import AppStore
from vessel.bus.nats_port import Bus
from vessel.contracts import subjects
from vessel.contracts.events import AppChanged, AppRecord


class AppPublisher:
    """Writes app records to the `inventory` KV bucket and announces them as events."""

    def __init__(self, bus: Bus, apps: AppStore) -> None:
        self.bus, self.apps = bus, apps

    async def put(self, record: AppRecord, previous: AppRecord | None) -> None:
        await self.apps.put(record)
        payload = AppChanged(app=record)
        message = subjects.APP_DISCOVERED
        if previous is not None:
            became_removed = record.state == "Removed" and previous.state != "Removed"
            message = subjects.APP_REMOVED if became_removed else subjects.APP_CHANGED
            payload = AppChanged(
                app=record,
                changed=changed_fields(previous, record),
                diff=app_diff(previous, record),
            )
        await self.bus.publish(
            message, payload, cluster=record.cluster, subject=self.subject(record)
        )

    async def remove(self, previous: AppRecord) -> None:
        await self.apps.delete(previous.id)
        gone = previous.model_copy(update={"state": "Removed"})
        changed = [] if previous.state == "Removed" else ["state"]
        await self.bus.publish(
            subjects.APP_REMOVED,
            AppChanged(app=gone, changed=changed),
            cluster=gone.cluster,
            subject=self.subject(gone),
        )

    @staticmethod
    def subject(record: AppRecord) -> str:
        return f"/clusters/{record.cluster}/apps/{record.id}"
