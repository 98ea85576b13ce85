"""Per-cluster inventory: informers feed a cache; changes are regrouped after a short
debounce (so a rolling update yields one `app.changed`) and published to KV and events."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from services.discovery.grouping import group_apps
from vessel.bus.nats_port import Bus, KeyValue
from vessel.contracts import catalog
from vessel.contracts.events import AppChanged, AppRecord
from vessel.kube.informer import Informer, Watchable

log = logging.getLogger("vessel.discovery")
Obj = dict[str, Any]
KINDS = [
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("v1", "PersistentVolumeClaim"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "ServiceAccount"),
]
SECRET_SAFE_KEYS = ("apiVersion", "kind", "metadata", "type")


def inventory_key(app_id: str) -> str:
    return f"apps.{app_id}"


class ClusterInventory:
    def __init__(
        self, cluster_id: str, kube: Watchable, bus: Bus, kv: KeyValue, debounce: float = 0.3
    ) -> None:
        self.cluster_id = cluster_id
        self.bus = bus
        self.kv = kv
        self.debounce = debounce
        self.informers = [Informer(kube, v, k) for v, k in KINDS]
        self.published: dict[str, AppRecord] = {}
        self._dirty = asyncio.Event()

    async def run(self) -> None:
        await self._load_published()
        tasks = [asyncio.create_task(i.run(self._on_change)) for i in self.informers]
        tasks.append(asyncio.create_task(self._publisher()))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()

    async def _load_published(self) -> None:
        """Resume from KV, so a restart announces only what changed while it was down."""
        prefix = inventory_key(f"{self.cluster_id}.")
        for key in await self.kv.keys():
            if key.startswith(prefix):
                entry = await self.kv.get(key)
                if entry is not None:
                    record = AppRecord.model_validate_json(entry.value)
                    self.published[record.id] = record

    async def _on_change(self, type_: str, obj: Obj) -> None:
        if obj.get("kind") == "Secret":
            for key in list(obj):
                if key not in SECRET_SAFE_KEYS:
                    obj.pop(key)  # inventory never holds secret data
        self._dirty.set()

    async def _publisher(self) -> None:
        for informer in self.informers:
            await informer.synced.wait()
        while True:
            await self._dirty.wait()
            await asyncio.sleep(self.debounce)
            self._dirty.clear()
            await self.publish()

    async def publish(self) -> None:
        objects = [o for i in self.informers for o in i.cache.values()]
        current = group_apps(self.cluster_id, objects)
        for app_id, record in current.items():
            previous = self.published.get(app_id)
            if previous == record:
                continue
            await self.kv.put(inventory_key(app_id), record.model_dump_json().encode())
            message = catalog.APP_DISCOVERED if previous is None else catalog.APP_CHANGED
            changed = (
                []
                if previous is None
                else [
                    f for f in AppRecord.model_fields if getattr(previous, f) != getattr(record, f)
                ]
            )
            await self.bus.publish(
                message,
                AppChanged(app=record, changed=changed),
                subject=f"/clusters/{self.cluster_id}/apps/{app_id}",
            )
            self.published[app_id] = record
        for app_id in set(self.published) - set(current):
            gone = self.published.pop(app_id).model_copy(update={"state": "Removed"})
            await self.kv.delete(inventory_key(app_id))
            await self.bus.publish(
                catalog.APP_REMOVED,
                AppChanged(app=gone, changed=["state"]),
                subject=f"/clusters/{self.cluster_id}/apps/{app_id}",
            )
        log.debug("cluster %s: %d apps", self.cluster_id, len(current))
