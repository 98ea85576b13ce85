"""Revert a claim's volume in place to a VolumeSnapshot of it, asked for by annotation.

A claim annotated `vessel.io/revert-to: <VolumeSnapshot in the claim's namespace>` has its
volume reverted on the backend (`revert_to_snapshot`). The snapshot must be a ready Vessel
snapshot of this very claim's volume, and the backend must advertise `revert`; otherwise a
Warning Event `RevertFailed` names why and the annotation stays, so correcting it (or the
snapshot becoming ready) is retried. On success the outcome goes on the claim as
`vessel.io/reverted-to: <snapshot>@<time>` and the request annotation is removed in the same
patch; `provisioner.snapshot.reverted` is published and a Normal Event `VolumeReverted`
recorded.

Idempotency: a request is identified by the snapshot's uid and the claim's previous
`vessel.io/reverted-to` value. The volume record keeps the last request done
(`revert_request`) and its outcome (`reverted_to`), saved right after the backend call, so a
redelivered request, or one repeated before the claim was patched, never reverts twice;
asking again after the outcome was recorded is a new request.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from services.provisioner.adapters.base import BackendError, InvalidVolume
from services.provisioner.context import ProvisionerContext
from services.provisioner.sources import snapshot_id_of
from services.provisioner.state import VolumeRecord
from services.provisioner.workqueue import Retry
from vessel.contracts import subjects
from vessel.contracts.events import SnapshotReverted
from vessel.kube.objects import KubeObject

REVERT_TO = "vessel.io/revert-to"
REVERTED_TO = "vessel.io/reverted-to"
LIVE = ("Provisioned", "Bound")


def revert_requested(claim: KubeObject) -> str | None:
    """The VolumeSnapshot name the claim asks its volume to be reverted to, if any."""
    value = (claim["metadata"].get("annotations") or {}).get(REVERT_TO)
    return value.strip() if isinstance(value, str) else None


class RevertRefused(Exception):
    """The revert cannot be done as asked; the message says why."""


class Reverter:
    def __init__(self, env: ProvisionerContext) -> None:
        self.env = env

    async def reconcile(self, claim: KubeObject, record: VolumeRecord) -> None:
        name = revert_requested(claim)
        if name is None or record.state not in LIVE:
            return
        meta = claim["metadata"]
        previous = (meta.get("annotations") or {}).get(REVERTED_TO, "")
        try:
            snapshot = self._check(claim, record, name)
        except RevertRefused as exc:
            await self._event(claim, "RevertFailed", str(exc), warning=True)
            return
        request = f"{snapshot['metadata']['uid']}|{previous}"
        if record.revert_request != request:
            record = await self._revert(claim, record, snapshot, request)
        await self._finish(claim, record, snapshot)

    def _check(self, claim: KubeObject, record: VolumeRecord, name: str) -> KubeObject:
        meta = claim["metadata"]
        where = f"annotation {REVERT_TO}={name!r} on claim {meta['namespace']}/{meta['name']}"
        if not name:
            raise RevertRefused(f"{where}: names no VolumeSnapshot")
        if self.env.vsnapshots is None:
            raise RevertRefused(f"{where}: the API server does not serve VolumeSnapshots")
        snapshot = self.env.snapshot(meta["namespace"], name)
        if snapshot is None:
            raise RevertRefused(
                f"{where}: VolumeSnapshot {meta['namespace']}/{name} does not exist"
            )
        what = f"VolumeSnapshot {meta['namespace']}/{name}"
        snap = self.env.snapshots.get(snapshot_id_of(snapshot))
        source = ((snapshot.get("spec") or {}).get("source") or {}).get("persistentVolumeClaimName")
        if snap is None and source != meta["name"]:
            raise RevertRefused(
                f"{where}: {what} is of claim {meta['namespace']}/{source}, not of this claim"
            )
        if snap is not None and snap.volume_id != record.volume_id:
            other = self.env.volumes.get(snap.volume_id)
            of = f" (claim {other.namespace}/{other.claim})" if other else ""
            raise RevertRefused(
                f"{where}: {what} is of volume {snap.volume_id}{of}, not of this claim's "
                f"volume {record.volume_id}"
            )
        ready = (snapshot.get("status") or {}).get("readyToUse") is True
        if snap is None or snap.state != "Ready" or not ready:
            raise RevertRefused(f"{where}: {what} is not a Vessel snapshot ready to use (yet)")
        backend = self.env.backends.get(record.backend)
        if backend is None:
            raise RevertRefused(
                f"{where}: backend {record.backend} is not configured in cluster "
                f"{self.env.cluster_id}"
            )
        if "revert" not in backend.capabilities:
            raise RevertRefused(
                f"{where}: backend {backend.name} ({backend.type}) cannot revert volumes "
                "(no 'revert' capability)"
            )
        return snapshot

    async def _revert(
        self, claim: KubeObject, record: VolumeRecord, snapshot: KubeObject, request: str
    ) -> VolumeRecord:
        backend = self.env.backends[record.backend]
        snapshot_id = snapshot_id_of(snapshot)
        try:
            await asyncio.to_thread(backend.revert_to_snapshot, record.volume_id, snapshot_id)
        except InvalidVolume as exc:
            await self._event(claim, "RevertFailed", str(exc), warning=True)
            raise Retry(str(exc)) from exc
        except BackendError as exc:
            raise Retry(f"reverting {record.volume_id} to {snapshot_id}: {exc}") from exc
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        done = record.model_copy(
            update={
                "revert_request": request,
                "reverted_to": f"{snapshot['metadata']['name']}@{stamp}",
            }
        )
        return await self.env.volumes.save(done)

    async def _finish(self, claim: KubeObject, record: VolumeRecord, snapshot: KubeObject) -> None:
        meta = claim["metadata"]
        name = snapshot["metadata"]["name"]
        await self.env.announce.publish(
            subjects.SNAPSHOT_REVERTED,
            SnapshotReverted(
                cluster=self.env.cluster_id,
                namespace=meta["namespace"],
                claim=meta["name"],
                snapshot=name,
                volume_id=record.volume_id,
                snapshot_id=snapshot_id_of(snapshot),
                backend=record.backend,
            ),
            f"{record.volume_id}/{record.revert_request}",
            self.env.announce.claim_subject(meta["namespace"], meta["name"]),
        )
        patch = {
            "metadata": {
                "annotations": {REVERT_TO: None, REVERTED_TO: record.reverted_to},
                "resourceVersion": meta["resourceVersion"],
            }
        }
        await self.env.kube.patch(
            "v1", "PersistentVolumeClaim", meta["name"], meta["namespace"], patch
        )
        await self._event(
            claim,
            "VolumeReverted",
            f"volume {record.volume_id} reverted to VolumeSnapshot {meta['namespace']}/{name} "
            f"({record.reverted_to})",
            warning=False,
        )

    async def _event(self, claim: KubeObject, reason: str, message: str, *, warning: bool) -> None:
        await self.env.announce.event(
            claim, "v1", "PersistentVolumeClaim", reason, message, warning=warning
        )
