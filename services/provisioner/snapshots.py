"""VolumeSnapshots of Vessel volumes: the snapshot controller and CSI snapshotter in one.

A VolumeSnapshot whose class's `driver` is `vessel.io/provisioner` and whose source claim
is bound to a Vessel volume gets our finalizer, a record, a backend snapshot, a
VolumeSnapshotContent (`snapcontent-<uid>`) and then `readyToUse: true` with
`boundVolumeSnapshotContentName`. Deleting it applies the class's `deletionPolicy`:
`Delete` removes the backend snapshot and the content, `Retain` keeps both.

Deletion is refused (an Event, the snapshot stays) while a clone depends on the snapshot,
unless the backend's clones are independent of their source. Both current backends make
independent clones (btrfs: a writable snapshot of the snapshot; dir: a copy), so only a
backend advertising the `dependent_clones` capability is held back.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from services.provisioner.adapters.base import BackendError, InvalidVolume, StorageBackend
from services.provisioner.autogrow import quantity_text
from services.provisioner.context import SNAPSHOT_API, ProvisionerContext
from services.provisioner.sources import snapshot_id_of
from services.provisioner.state import SnapshotRecord
from services.provisioner.workqueue import Retry
from vessel.config import PROVISIONER_NAME
from vessel.contracts import subjects
from vessel.contracts.events import SnapshotChanged
from vessel.kube.errors import AlreadyExists
from vessel.kube.objects import ClaimView, KubeObject

FINALIZER = "vessel.io/snapshot-protection"
KIND = "VolumeSnapshot"


def clones_depend_on_snapshots(backend: StorageBackend) -> bool:
    return "dependent_clones" in backend.capabilities


def content_name(snapshot: KubeObject) -> str:
    return f"snapcontent-{snapshot['metadata']['uid']}"


async def ensure_content(
    env: ProvisionerContext,
    vs: KubeObject,
    record: SnapshotRecord,
    vclass: KubeObject,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> None:
    """The VolumeSnapshotContent of `vs` (created unless it exists), its status ready.

    `labels` and `annotations` are added to the content's own."""
    meta = vs["metadata"]
    content = {
        "apiVersion": SNAPSHOT_API,
        "kind": "VolumeSnapshotContent",
        "metadata": {
            "name": record.content,
            "labels": {"vessel.io/cluster": env.cluster_id, **(labels or {})},
            "annotations": {"vessel.io/snapshot-id": record.snapshot_id, **(annotations or {})},
        },
        "spec": {
            "deletionPolicy": record.deletion_policy,
            "driver": PROVISIONER_NAME,
            "volumeSnapshotClassName": vclass.get("metadata", {}).get("name", ""),
            "source": {"volumeHandle": record.volume_id},
            "volumeSnapshotRef": {
                "apiVersion": SNAPSHOT_API,
                "kind": KIND,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
        },
    }
    try:
        await env.kube.create(content)
    except AlreadyExists:
        pass
    await env.kube.patch(
        SNAPSHOT_API,
        "VolumeSnapshotContent",
        record.content,
        None,
        {
            "status": {
                "snapshotHandle": f"{record.backend}/{record.volume_id}/{record.snapshot_id}",
                "creationTime": int(record.created_at * 1e9),
                "readyToUse": True,
                "restoreSize": record.size_bytes,
            }
        },
        status=True,
    )


class Snapshots:
    def __init__(self, env: ProvisionerContext) -> None:
        self.env = env

    async def reconcile(self, namespace: str, name: str) -> None:
        vs = self.env.snapshot(namespace, name)
        if vs is None:
            return
        record = self.env.snapshots.get(snapshot_id_of(vs))
        vclass = self.env.snapshot_class((vs.get("spec") or {}).get("volumeSnapshotClassName"))
        ours = vclass is not None and vclass.get("driver") == PROVISIONER_NAME
        if not ours and record is None:
            return
        if vs["metadata"].get("deletionTimestamp"):
            await self._delete(vs, record)
            return
        if record is not None and record.state == "Ready":
            await self._publish_status(vs, record)
            return
        await self._create(vs, record, vclass or {})

    async def _warn(self, vs: KubeObject, reason: str, message: str) -> None:
        await self.env.announce.event(vs, SNAPSHOT_API, KIND, reason, message)

    async def _create(
        self, vs: KubeObject, record: SnapshotRecord | None, vclass: KubeObject
    ) -> None:
        meta = vs["metadata"]
        where = f"VolumeSnapshot {meta['namespace']}/{meta['name']}"
        claim_name = ((vs.get("spec") or {}).get("source") or {}).get("persistentVolumeClaimName")
        if not claim_name:
            await self._warn(
                vs,
                "SnapshotCreationFailed",
                f"{where}: only spec.source.persistentVolumeClaimName is supported",
            )
            return
        if record is None:
            claim = self.env.claim(meta["namespace"], claim_name)
            volume = self.env.volumes.get(ClaimView(claim).volume_name if claim else "")
            if claim is None or volume is None or volume.state not in ("Provisioned", "Bound"):
                await self._warn(
                    vs,
                    "SnapshotCreationFailed",
                    f"{where}: source claim {meta['namespace']}/{claim_name} is not bound to a "
                    "Vessel volume (yet)",
                )
                raise Retry(f"{where}: waiting for its source claim")
            backend = self.env.backends.get(volume.backend)
            if backend is None or "snapshots" not in backend.capabilities:
                await self._warn(
                    vs,
                    "SnapshotCreationFailed",
                    f"{where}: backend {volume.backend} cannot take snapshots (no 'snapshots' "
                    "capability)",
                )
                return
            await self._add_finalizer(vs)
            record = await self.env.snapshots.create(
                SnapshotRecord(
                    cluster=self.env.cluster_id,
                    snapshot_id=snapshot_id_of(vs),
                    volume_id=volume.volume_id,
                    backend=volume.backend,
                    namespace=meta["namespace"],
                    name=meta["name"],
                    uid=meta["uid"],
                    content=content_name(vs),
                    deletion_policy=vclass.get("deletionPolicy") or "Delete",
                    state="Creating",
                )
            )
        backend = self.env.backends.get(record.backend)
        if backend is None:
            raise Retry(f"{where}: backend {record.backend} is not configured")
        try:
            info = await asyncio.to_thread(
                backend.create_snapshot, record.volume_id, record.snapshot_id
            )
        except InvalidVolume as exc:
            await self._warn(vs, "SnapshotCreationFailed", f"{where}: {exc}")
            return
        except BackendError as exc:
            raise Retry(f"{where}: {exc}") from exc
        ready = record.model_copy(
            update={"state": "Ready", "size_bytes": info.size_bytes, "created_at": info.created_at}
        )
        await self._ensure_content(vs, ready, vclass)
        await self.env.announce.publish(
            subjects.SNAPSHOT_CREATED, self._payload(ready), ready.snapshot_id
        )
        ready = await self.env.snapshots.save(ready)
        await self._publish_status(vs, ready)

    async def _ensure_content(
        self, vs: KubeObject, record: SnapshotRecord, vclass: KubeObject
    ) -> None:
        await ensure_content(self.env, vs, record, vclass)

    async def _publish_status(self, vs: KubeObject, record: SnapshotRecord) -> None:
        status = vs.get("status") or {}
        if status.get("readyToUse") is True and status.get("boundVolumeSnapshotContentName"):
            return
        created = datetime.fromtimestamp(record.created_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        await self.env.kube.patch(
            SNAPSHOT_API,
            KIND,
            vs["metadata"]["name"],
            vs["metadata"]["namespace"],
            {
                "status": {
                    "boundVolumeSnapshotContentName": record.content,
                    "creationTime": created,
                    "readyToUse": True,
                    "restoreSize": quantity_text(record.size_bytes),
                }
            },
            status=True,
        )

    async def _delete(self, vs: KubeObject, record: SnapshotRecord | None) -> None:
        meta = vs["metadata"]
        if FINALIZER not in (meta.get("finalizers") or []):
            return
        if record is not None:
            backend = self.env.backends.get(record.backend)
            if backend is None:
                raise Retry(
                    f"snapshot {record.snapshot_id}: backend {record.backend} is not configured"
                )
            if record.deletion_policy == "Delete":
                clones = [
                    v for v in self.env.volumes.all() if v.source_snapshot == record.snapshot_id
                ]
                if clones and clones_depend_on_snapshots(backend):
                    names = ", ".join(f"{v.namespace}/{v.claim}" for v in clones)
                    await self._warn(
                        vs,
                        "SnapshotDeleteRefused",
                        f"VolumeSnapshot {meta['namespace']}/{meta['name']} is the source of "
                        f"clones on backend {backend.name}, whose clones depend on it: {names}",
                    )
                    raise Retry("snapshot has dependent clones")
                try:
                    await asyncio.to_thread(
                        backend.delete_snapshot, record.volume_id, record.snapshot_id
                    )
                except BackendError as exc:
                    raise Retry(f"deleting snapshot {record.snapshot_id}: {exc}") from exc
                await self.env.kube.delete(SNAPSHOT_API, "VolumeSnapshotContent", record.content)
                await self.env.announce.publish(
                    subjects.SNAPSHOT_DELETED, self._payload(record), record.snapshot_id
                )
            await self.env.snapshots.remove(record.snapshot_id)
        await self._drop_finalizer(vs)

    def _payload(self, record: SnapshotRecord) -> SnapshotChanged:
        return SnapshotChanged(
            cluster=self.env.cluster_id,
            namespace=record.namespace,
            snapshot=record.name,
            content=record.content,
            snapshot_id=record.snapshot_id,
            volume_id=record.volume_id,
            backend=record.backend,
            size_bytes=record.size_bytes,
        )

    async def _add_finalizer(self, vs: KubeObject) -> None:
        finalizers = list(vs["metadata"].get("finalizers") or [])
        if FINALIZER not in finalizers:
            await self._set_finalizers(vs, [*finalizers, FINALIZER])

    async def _drop_finalizer(self, vs: KubeObject) -> None:
        finalizers = list(vs["metadata"].get("finalizers") or [])
        await self._set_finalizers(vs, [f for f in finalizers if f != FINALIZER])

    async def _set_finalizers(self, vs: KubeObject, finalizers: list[str]) -> None:
        meta = vs["metadata"]
        patch = {"metadata": {"finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}}
        await self.env.kube.patch(SNAPSHOT_API, KIND, meta["name"], meta["namespace"], patch)
