"""A provisioner on the test's event loop, against a real (emulated) API server over HTTP,
real NATS and real backends; helpers to create objects and wait for outcomes, and to run
single rows of the provisioner's inbox (tests embed parts of the service, not all of it)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from services.provisioner.adapters.base import StorageBackend
from services.provisioner.backend_admin import BackendAdmin
from services.provisioner.context import ProvisionerContext
from services.provisioner.controller import Provisioner
from services.provisioner.inbox import backend_commands, once_ready, query_responder
from services.provisioner.pools import Pool
from vessel.bus.nats_port import Bus, KeyValue
from vessel.config import PROVISIONER_NAME, BackendConfig
from vessel.contracts.envelope import CloudEvent
from vessel.kube.client import KubeCluster
from vessel.kube.objects import KubeObject
from vessel.stopping import cancel_and_wait

T = TypeVar("T")
MiB = 1 << 20
SNAPSHOT_API = "snapshot.storage.k8s.io/v1"


async def wait_for(check: Callable[[], Awaitable[T | None]], what: str, within: float = 10) -> T:
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)


class ServedBackendAdmin(BackendAdmin):
    """A `BackendAdmin` that serves its inbox row alone, once `ready`: how tests (here and
    the gateway's infrastructure tests) run it; the service starts it from its inbox."""

    def __init__(
        self, env: ProvisionerContext, bus: Bus, kv: KeyValue, configured: list[BackendConfig]
    ) -> None:
        super().__init__(env, kv, configured)
        self.bus = bus

    async def serve(self, ready: asyncio.Event) -> None:
        await once_ready(self.bus, ready, [backend_commands(self.env, self)]).run()


async def serve_queries(env: ProvisionerContext, bus: Bus, ready: asyncio.Event) -> None:
    """The provisioner's query responder alone, once `ready`."""
    await once_ready(bus, ready, [query_responder(env)]).run()


@dataclass
class Lab:
    kube: KubeCluster
    bus: Bus
    backends: list[StorageBackend]
    cluster: str = field(default_factory=lambda: f"t-{uuid.uuid4().hex[:10]}")
    namespace: str = "default"
    provisioner: Provisioner | None = None
    events: list[CloudEvent] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _run: asyncio.Task[None] | None = None
    volumes_kv: KeyValue | None = None
    snapshots_kv: KeyValue | None = None

    async def start(
        self,
        *,
        pools: list[Pool] | None = None,
        backends: list[StorageBackend] | None = None,
        autogrow_seconds: float = 30.0,
    ) -> Provisioner:
        if self.volumes_kv is None:
            self.volumes_kv = await self.bus.kv("volumes")
            self.snapshots_kv = await self.bus.kv("snapshots")
            self._tasks.append(asyncio.create_task(self._collect(datetime.now(UTC))))
        if backends is not None:
            self.backends = backends
        assert self.snapshots_kv is not None
        self.provisioner = Provisioner(
            self.cluster,
            self.kube,
            self.bus,
            self.volumes_kv,
            self.backends,
            snapshots=self.snapshots_kv,
            pools=pools,
            resync_seconds=1.0,
            autogrow_seconds=autogrow_seconds,
        )
        self._run = asyncio.create_task(self.provisioner.run())
        await asyncio.wait_for(self.provisioner.ready.wait(), 10)
        return self.provisioner

    async def stop(self) -> None:
        if self._run is not None:
            await cancel_and_wait([self._run])
            self._run = None

    async def close(self) -> None:
        await self.stop()
        await cancel_and_wait(self._tasks)

    async def _collect(self, since: datetime) -> None:
        async for _, event in self.bus.tail("vessel.evt.provisioner.>", since=since):
            if event.data.get("cluster") == self.cluster:
                self.events.append(event)

    def published(self, type_suffix: str) -> list[dict[str, Any]]:
        return [e.data for e in self.events if e.type == f"io.vessel.provisioner.{type_suffix}.v1"]

    async def wait_published(self, type_suffix: str, count: int = 1) -> list[dict[str, Any]]:
        async def check() -> list[dict[str, Any]] | None:
            found = self.published(type_suffix)
            return found if len(found) >= count else None

        return await wait_for(check, f"{count} {type_suffix} event(s)")

    # Objects.

    async def storage_class(
        self, name: str, parameters: dict[str, str] | None = None, **fields: Any
    ) -> KubeObject:
        body: KubeObject = {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": f"{name}-{self.cluster}"},
            "provisioner": PROVISIONER_NAME,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
            **fields,
        }
        if parameters:
            body["parameters"] = parameters
        return await self.kube.create(body)

    async def claim(
        self,
        name: str,
        storage_class: KubeObject,
        size: str = "64Mi",
        *,
        annotations: dict[str, str] | None = None,
        **spec: Any,
    ) -> KubeObject:
        body: KubeObject = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {
                "storageClassName": storage_class["metadata"]["name"],
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": size}},
                **spec,
            },
        }
        if annotations:
            body["metadata"]["annotations"] = annotations
        return await self.kube.create(body)

    async def get_claim(self, name: str) -> KubeObject | None:
        return await self.kube.get("v1", "PersistentVolumeClaim", name, self.namespace)

    async def get_pv(self, name: str) -> KubeObject | None:
        return await self.kube.get("v1", "PersistentVolume", name)

    async def bound(self, name: str, within: float = 10) -> tuple[KubeObject, KubeObject]:
        """The claim once Bound, and its PV."""

        async def check() -> KubeObject | None:
            claim = await self.get_claim(name)
            phase = (claim or {}).get("status", {}).get("phase")
            return claim if phase == "Bound" else None

        claim = await wait_for(check, f"claim {name} bound", within)
        pv = await self.get_pv(claim["spec"]["volumeName"])
        assert pv is not None
        return claim, pv

    async def delete_claim(self, name: str) -> None:
        await self.kube.delete("v1", "PersistentVolumeClaim", name, self.namespace)

    async def reasons(self, name: str, kind: str = "PersistentVolumeClaim") -> dict[str, str]:
        """Kubernetes Events on an object of this namespace: reason → latest message."""
        events, _ = await self.kube.list("v1", "Event", self.namespace)
        found = {}
        for event in events:
            involved = event.get("involvedObject") or {}
            if involved.get("name") == name and involved.get("kind") == kind:
                found[event["reason"]] = event["message"]
        return found

    async def wait_reason(
        self, name: str, reason: str, kind: str = "PersistentVolumeClaim", within: float = 10
    ) -> str:
        async def check() -> str | None:
            return (await self.reasons(name, kind)).get(reason)

        return await wait_for(check, f"event {reason} on {kind} {name}", within)

    async def record(self, volume_id: str) -> dict[str, Any] | None:
        assert self.volumes_kv is not None
        entry = await self.volumes_kv.get(f"{self.cluster}.{volume_id}")
        if entry is None:
            return None
        value: dict[str, Any] = json.loads(entry.value)
        return value


@contextlib.asynccontextmanager
async def running_lab(
    kube: KubeCluster, bus: Bus, backends: list[StorageBackend]
) -> AsyncIterator[Lab]:
    lab = Lab(kube, bus, backends)
    try:
        yield lab
    finally:
        await lab.close()
