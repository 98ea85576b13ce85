"""Claim → volume → PV, driven by a PVC informer; publishes `volume.provisioned` on bind.

Idempotent end to end: the volume id and PV name derive from the claim's uid, backends
create idempotently, an existing PV is accepted, and the volumes KV record (revision-checked)
makes the bind event fire once even across restarts.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from services.provisioner.backends.base import BackendError, StorageBackend
from services.provisioner.claims import (
    ClaimRejected,
    ClaimRequest,
    is_ours,
    needs_volume,
    parse_claim,
    persistent_volume,
    pick_class,
)
from vessel.bus.errors import KeyExistsError
from vessel.bus.nats_port import Bus, KeyValue
from vessel.contracts import catalog
from vessel.contracts.events import VolumeFailed, VolumeProvisioned
from vessel.kube.client import KubeCluster
from vessel.kube.errors import AlreadyExists

log = logging.getLogger("vessel.provisioner")
Obj = dict[str, Any]


class Provisioner:
    def __init__(
        self,
        cluster_id: str,
        kube: KubeCluster,
        bus: Bus,
        volumes: KeyValue,
        backends: list[StorageBackend],
    ) -> None:
        self.cluster_id = cluster_id
        self.kube = kube
        self.bus = bus
        self.volumes = volumes
        self.backends = backends
        self._rejected: dict[str, str] = {}
        self._lock = asyncio.Lock()

    async def on_claim(self, type_: str, claim: Obj) -> None:
        if type_ == "DELETED":
            self._rejected.pop(claim["metadata"]["uid"], None)
            return
        async with self._lock:  # one claim at a time keeps capacity accounting honest
            if needs_volume(claim):
                await self._provision(claim)
            elif claim.get("status", {}).get("phase") == "Bound":
                await self._announce_bound(claim)

    async def resync(self, claims: Callable[[], list[Obj]], period: float = 15.0) -> None:
        """Retry pending claims now and then: backends free up, classes get created."""
        while True:
            await asyncio.sleep(period)
            for claim in claims():
                await self.on_claim("MODIFIED", claim)

    async def _provision(self, claim: Obj) -> None:
        try:
            classes, _ = await self.kube.list("storage.k8s.io/v1", "StorageClass")
            storage_class = pick_class(claim, classes)
            if storage_class is None or not is_ours(storage_class):
                return
            request = parse_claim(claim, storage_class)
            backend = await self._place(request)
            info = await asyncio.to_thread(
                backend.create_volume, request.volume_id, request.size_bytes
            )
        except ClaimRejected as exc:
            await self._reject(claim, exc.reason, str(exc))
            return
        except BackendError as exc:  # retried by the next resync
            await self._reject(claim, "ProvisioningFailed", str(exc))
            return
        record = {
            "cluster": self.cluster_id,
            "volume_id": request.volume_id,
            "backend": backend.name,
            "backend_type": backend.type,
            "path": str(info.path),
            "size_bytes": info.size_bytes,
            "namespace": request.namespace,
            "claim": request.name,
            "state": "Provisioned",
        }
        await self._save_if_absent(request.volume_id, record)
        try:
            await self.kube.create(
                persistent_volume(request, self.cluster_id, backend.name, str(info.path))
            )
        except AlreadyExists:
            pass
        log.info(
            "provisioned %s/%s as %s on %s",
            request.namespace,
            request.name,
            request.volume_id,
            backend.name,
        )

    async def _place(self, request: ClaimRequest) -> StorageBackend:
        """The backend with the most free space that can hold the claim."""
        free = {b.name: await asyncio.to_thread(b.free_bytes) for b in self.backends}
        candidates = [b for b in self.backends if free[b.name] >= request.size_bytes]
        if not candidates:
            best = max(free.items(), key=lambda kv: kv[1], default=("none", 0))
            raise ClaimRejected(
                "ProvisioningFailed",
                f"no backend in cluster {self.cluster_id} can hold {request.size_bytes} bytes "
                f"(largest free: {best[1]} bytes on {best[0]})",
            )
        return max(candidates, key=lambda b: free[b.name])

    async def _reject(self, claim: Obj, reason: str, message: str) -> None:
        uid = claim["metadata"]["uid"]
        if self._rejected.get(uid) == message:
            return
        self._rejected[uid] = message
        log.warning(
            "claim %s/%s: %s", claim["metadata"]["namespace"], claim["metadata"]["name"], message
        )
        await self.kube.emit_event(claim, reason, message, component="vessel-provisioner")
        await self.bus.publish(
            catalog.VOLUME_FAILED,
            VolumeFailed(
                cluster=self.cluster_id,
                namespace=claim["metadata"]["namespace"],
                claim=claim["metadata"]["name"],
                reason=reason,
                message=message,
            ),
        )

    async def _save_if_absent(self, volume_id: str, record: dict[str, Any]) -> None:
        try:
            await self.volumes.create(self._key(volume_id), json.dumps(record).encode())
        except KeyExistsError:
            pass

    def _key(self, volume_id: str) -> str:
        return f"{self.cluster_id}.{volume_id}"

    async def _announce_bound(self, claim: Obj) -> None:
        volume_id = claim["spec"].get("volumeName", "")
        entry = await self.volumes.get(self._key(volume_id)) if volume_id else None
        if entry is None:
            return
        record = json.loads(entry.value)
        if record["state"] == "Bound":
            return
        record["state"] = "Bound"
        try:
            await self.volumes.update(entry.key, json.dumps(record).encode(), entry.revision)
        except KeyExistsError:
            return  # another replica announced it
        await self.bus.publish(
            catalog.VOLUME_PROVISIONED,
            VolumeProvisioned(
                cluster=self.cluster_id,
                namespace=record["namespace"],
                claim=record["claim"],
                pv_name=volume_id,
                volume_id=volume_id,
                backend=record["backend"],
                backend_type=record["backend_type"],
                size_bytes=record["size_bytes"],
                path=record["path"],
            ),
            subject=f"/clusters/{self.cluster_id}/namespaces/{record['namespace']}/pvcs/{record['claim']}",
        )
