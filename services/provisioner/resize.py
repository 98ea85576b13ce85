"""Expansion, as the external resizer does it: backend first, then the PV's capacity, then
the claim's `status.capacity` (status subresource), then `volume.expanded`, then the record.

Asked for by a claim whose request grew (its class must allow expansion; shrinking is
refused), or by the class's auto-grow policy when a volume fills up. Refusals are Events
(`VolumeResizeFailed`) naming why; every step repeats safely.
"""

from __future__ import annotations

import asyncio
import logging

from services.provisioner.adapters.base import BackendError, InsufficientCapacity, InvalidVolume
from services.provisioner.autogrow import grown_size, quantity_text
from services.provisioner.claims import ClaimRejected
from services.provisioner.classes import class_policy
from services.provisioner.context import ProvisionerContext
from services.provisioner.state import VolumeRecord
from services.provisioner.workqueue import Retry
from vessel.contracts import subjects
from vessel.contracts.events import VolumeExpanded, VolumeSizeReason
from vessel.kube.client import quantity_bytes
from vessel.kube.objects import ClaimView, KubeObject, StorageClassView

log = logging.getLogger("vessel.provisioner")
RESIZE_FAILED = "VolumeResizeFailed"


class Resizer:
    def __init__(self, env: ProvisionerContext) -> None:
        self.env = env

    async def on_bound_claim(self, claim: KubeObject, record: VolumeRecord) -> None:
        text = ClaimView(claim).requested_storage or ""
        try:
            requested = quantity_bytes(text)
        except ValueError as exc:
            await self._refuse(claim, f"spec.resources.requests.storage {text!r}: {exc}")
            return
        if requested == record.requested:
            return
        if requested < record.requested:
            await self._refuse(
                claim,
                f"shrinking from {record.requested} to {requested} bytes is not supported: "
                "volumes only grow",
            )
            return
        class_name = record.storage_class or ClaimView(claim).storage_class or ""
        storage_class = self.env.storage_class(class_name)
        if storage_class is None or not StorageClassView(storage_class).allows_expansion:
            await self._refuse(
                claim,
                f"StorageClass {class_name} does not allow volume expansion "
                "(allowVolumeExpansion is not true)",
            )
            return
        if requested <= record.size_bytes:  # grown already (auto-grow): remember the request
            await self.env.volumes.save(record.model_copy(update={"requested_bytes": requested}))
            return
        await self.expand(claim, record, requested, "request")

    async def expand(
        self, claim: KubeObject, record: VolumeRecord, new_size: int, reason: VolumeSizeReason
    ) -> bool:
        backend = self.env.backends.get(record.backend)
        if backend is None:
            raise Retry(f"volume {record.volume_id}: backend {record.backend} is not configured")
        if "expand" not in backend.capabilities:
            await self._refuse(
                claim, f"backend {backend.name} ({backend.type}) cannot expand volumes"
            )
            return False
        growth = new_size - record.size_bytes
        pool = next((p for p in self.env.pools_of(record.backend) if p.name == record.pool), None)
        if pool is not None and pool.capacity_bytes is not None:
            room = pool.capacity_bytes - self.env.allocated(pool)
            if growth > room:
                await self._refuse(
                    claim,
                    f"growing volume {record.volume_id} by {growth} bytes to {new_size} needs "
                    f"more than the {max(0, room)} bytes free in pool {pool.id}",
                )
                return False
        try:
            await asyncio.to_thread(backend.expand_volume, record.volume_id, new_size)
        except (InsufficientCapacity, InvalidVolume) as exc:
            await self._refuse(claim, str(exc))
            return False
        except BackendError as exc:
            raise Retry(f"expanding {record.volume_id}: {exc}") from exc
        size_text = quantity_text(new_size)
        kube = self.env.kube
        meta = claim["metadata"]
        await kube.patch(
            "v1",
            "PersistentVolume",
            record.volume_id,
            None,
            {"spec": {"capacity": {"storage": size_text}}},
        )
        await kube.patch(
            "v1",
            "PersistentVolumeClaim",
            meta["name"],
            meta["namespace"],
            {"status": {"capacity": {"storage": size_text}}},
            status=True,
        )
        await self.env.announce.publish(
            subjects.VOLUME_EXPANDED,
            VolumeExpanded(
                cluster=record.cluster,
                namespace=record.namespace,
                claim=record.claim,
                volume_id=record.volume_id,
                backend=record.backend,
                old_size_bytes=record.size_bytes,
                new_size_bytes=new_size,
                reason=reason,
            ),
            f"{record.volume_id}/{new_size}",
            self.env.announce.claim_subject(record.namespace, record.claim),
        )
        requested = new_size if reason == "request" else record.requested
        await self.env.volumes.save(
            record.model_copy(update={"size_bytes": new_size, "requested_bytes": requested})
        )
        await self.env.capacity_changed(record.backend)
        await self.env.announce.event(
            claim,
            "v1",
            "PersistentVolumeClaim",
            "VolumeResizeSuccessful",
            f"volume {record.volume_id} grew from {record.size_bytes} to {new_size} bytes "
            f"({reason})",
            warning=False,
        )
        return True

    async def _refuse(self, claim: KubeObject, message: str) -> None:
        await self.env.announce.event(claim, "v1", "PersistentVolumeClaim", RESIZE_FAILED, message)

    async def autogrow_once(self) -> int:
        """Grow every bound volume whose class's policy says it is full enough; the count."""
        grown = 0
        for record in self.env.volumes.all():
            if record.state != "Bound":
                continue
            storage_class = self.env.storage_class(record.storage_class)
            claim = self.env.claim(record.namespace, record.claim)
            backend = self.env.backends.get(record.backend)
            if storage_class is None or claim is None or backend is None:
                continue
            try:
                _, policy = class_policy(storage_class)
            except ClaimRejected:
                continue
            if policy is None:
                continue
            try:
                usage = await asyncio.to_thread(backend.usage, record.volume_id)
            except BackendError as exc:
                log.warning("auto-grow: usage of %s: %s", record.volume_id, exc)
                continue
            target = grown_size(policy, record.size_bytes, usage.used_bytes)
            if target is None:
                continue
            log.info(
                "auto-grow: %s uses %d of %d bytes; growing to %d",
                record.volume_id,
                usage.used_bytes,
                record.size_bytes,
                target,
            )
            try:
                grown += await self.expand(claim, record, target, "autogrow")
            except Exception:  # one volume's trouble must not stop the others
                log.exception("auto-grow of %s failed", record.volume_id)
        return grown

    async def autogrow_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.autogrow_once()
