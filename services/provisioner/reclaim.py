"""Reclaim: a released PV, or a volume whose claim vanished, handled per reclaim policy.

`Delete`: the record is marked `Deleting` first (so a restart finishes the job), then the
backend volume goes, then the PV, then `volume.deleted` is published and the record
removed. `Retain`: backend volume and PV stay (the PV Released), `volume.retained` is
published and the record kept as `Retained` (its space stays allocated to its pool).
Every step is idempotent, so a crash anywhere is repaired by doing it again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Literal

from services.provisioner.adapters.base import BackendError
from services.provisioner.context import ProvisionerContext
from services.provisioner.state import VolumeRecord
from services.provisioner.workqueue import Retry
from vessel.contracts import subjects
from vessel.contracts.events import VolumeDeleted, VolumeRetained
from vessel.kube.objects import KubeObject, PersistentVolumeView, annotations_of, labels_of

log = logging.getLogger("vessel.provisioner")


class Reclaimer:
    def __init__(self, env: ProvisionerContext) -> None:
        self.env = env
        self.inflight: set[str] = set()
        """Volumes a worker is provisioning right now: never orphans."""

    async def reconcile_pv(self, name: str) -> None:
        pv = self.env.pv(name)
        if pv is None or not self.env.is_ours(pv):
            return
        view = PersistentVolumeView(pv)
        if view.phase != "Released":
            return
        volume_id = annotations_of(pv).get("vessel.io/volume-id", name)
        record = self.env.volumes.get(volume_id) or _record_from_pv(self.env, pv, volume_id)
        policy = view.reclaim_policy
        if policy == "Delete":
            await self.delete(record, "released")
        elif policy == "Retain":
            await self.retain(record)
        else:
            await self.env.announce.event(
                pv,
                "v1",
                "PersistentVolume",
                "VolumeFailedRecycle",
                f"reclaim policy {policy} is not supported by {record.backend}: use Delete or "
                "Retain",
            )

    async def check_volume(self, volume_id: str) -> None:
        """A record without a PV: finish a deletion, or reclaim it if its claim is gone."""
        record = self.env.volumes.get(volume_id)
        if record is None or volume_id in self.inflight:
            return
        if self.env.pv(volume_id) is not None:
            self.env.queue.add(("pv", volume_id))
            return
        if record.state == "Deleting":
            await self.delete(record, "released")
            return
        if record.state == "Retained":
            return
        claim = self.env.claim(record.namespace, record.claim)
        if claim is not None and claim["metadata"]["uid"] in (record.claim_uid, ""):
            self.env.queue.add(("claim", f"{record.namespace}/{record.claim}"))
            return
        log.info(
            "volume %s has no claim and no PV: reclaiming (%s)", volume_id, record.reclaim_policy
        )
        if record.reclaim_policy == "Retain":
            await self.retain(record)
        else:
            await self.delete(record, "orphaned")

    async def delete(self, record: VolumeRecord, reason: Literal["released", "orphaned"]) -> None:
        backend = self.env.backends.get(record.backend)
        if backend is None:
            raise Retry(f"volume {record.volume_id}: backend {record.backend} is not configured")
        if record.state != "Deleting" and self.env.volumes.get(record.volume_id) is not None:
            record = await self.env.volumes.save(record.model_copy(update={"state": "Deleting"}))
        try:
            await asyncio.to_thread(backend.delete_volume, record.volume_id)
        except BackendError as exc:
            raise Retry(f"deleting volume {record.volume_id}: {exc}") from exc
        await self.env.kube.delete("v1", "PersistentVolume", record.volume_id)
        await self.env.announce.publish(
            subjects.VOLUME_DELETED,
            VolumeDeleted(
                cluster=self.env.cluster_id,
                namespace=record.namespace,
                claim=record.claim,
                volume_id=record.volume_id,
                backend=record.backend,
                reason=reason,
            ),
            record.volume_id,
            self.env.announce.claim_subject(record.namespace, record.claim),
        )
        if self.env.volumes.get(record.volume_id) is not None:
            await self.env.volumes.remove(record.volume_id)
        await self.env.capacity_changed(record.backend)
        log.info("deleted volume %s (%s) from %s", record.volume_id, reason, record.backend)

    async def retain(self, record: VolumeRecord) -> None:
        if record.state == "Retained":
            return
        await self.env.announce.publish(
            subjects.VOLUME_RETAINED,
            VolumeRetained(
                cluster=self.env.cluster_id,
                namespace=record.namespace,
                claim=record.claim,
                volume_id=record.volume_id,
                backend=record.backend,
                path=record.path,
            ),
            record.volume_id,
            self.env.announce.claim_subject(record.namespace, record.claim),
        )
        await self.env.volumes.save(record.model_copy(update={"state": "Retained"}))
        log.info("retained volume %s on %s", record.volume_id, record.backend)


def _record_from_pv(env: ProvisionerContext, pv: KubeObject, volume_id: str) -> VolumeRecord:
    """What a PV of ours tells about its volume when no record is left (a lost KV)."""
    view = PersistentVolumeView(pv)
    spec = view.spec
    ref = spec.get("claimRef") or {}
    backend = labels_of(pv).get("vessel.io/backend", "")
    found = env.backends.get(backend)
    return VolumeRecord(
        cluster=env.cluster_id,
        volume_id=volume_id,
        backend=backend,
        backend_type=found.type if found else "",
        path=(spec.get("hostPath") or {}).get("path", ""),
        size_bytes=0,
        namespace=ref.get("namespace") or "unknown",
        claim=ref.get("name") or "unknown",
        claim_uid=ref.get("uid") or "",
        reclaim_policy=view.reclaim_policy,
        state="Bound",
    )
