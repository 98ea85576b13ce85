"""Group snapshots: the volumes of several claims snapshotted back to back, for app snapshots.

Every claim is resolved and its VolumeSnapshot object created first; only then are the
backend snapshots taken, in one tight loop in one thread, so the time between the first
and the last is the backends' snapshot time alone (measured and reported as the spread).
Afterwards each snapshot gets the objects the snapshot controller would have made
(record, VolumeSnapshotContent, ready status), so users see ordinary VolumeSnapshots,
labelled `vessel.io/group`, usable as a clone's dataSource and deleted as usual.

The backend snapshot id is `snapshot-<VolumeSnapshot uid>`, the controller's own scheme:
were the provisioner to stop mid-group, the controller finishes the same snapshot (one
id, never two snapshots). While a group runs, the controller leaves its snapshots alone
(`inflight`), so the two never take one snapshot twice at the same time.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass

from services.provisioner.adapters.base import BackendError, SnapshotInfo, StorageBackend
from services.provisioner.context import SNAPSHOT_API, ProvisionerContext
from services.provisioner.snapshots import (
    FINALIZER,
    KIND,
    Snapshots,
    content_name,
    ensure_content,
)
from services.provisioner.sources import snapshot_id_of
from services.provisioner.state import SnapshotRecord
from vessel.bus.errors import TemporaryError
from vessel.contracts import subjects
from vessel.contracts.group_snapshots import GroupMember, GroupSnapshotResult, SnapshotGroup
from vessel.kube.errors import AlreadyExists, KubeError
from vessel.kube.objects import ClaimView, KubeObject

log = logging.getLogger("vessel.provisioner.groups")
GROUP_LABEL = "vessel.io/group"
SPREAD_ANNOTATION = "vessel.io/group-spread-seconds"


def snapshot_name(group_id: str, claim: str) -> str:
    """`<group>-<claim>` as a valid object name (lowercase, at most 253 characters)."""
    slug = re.sub(r"[^a-z0-9.-]", "-", group_id.lower()).strip("-.") or "group"
    return f"{slug}-{claim}"[:253].rstrip("-.")


@dataclass
class Member:
    namespace: str
    claim: str
    volume_id: str = ""
    backend: StorageBackend | None = None
    vs: KubeObject | None = None
    record: SnapshotRecord | None = None
    info: SnapshotInfo | None = None
    error: str = ""
    inflight: str = ""
    """`<namespace>/<name>` of its VolumeSnapshot, kept from the controller while we work."""

    def result(self) -> GroupMember:
        ok = not self.error and self.info is not None and self.vs is not None
        return GroupMember(
            namespace=self.namespace,
            claim=self.claim,
            volume_snapshot=self.vs["metadata"]["name"] if ok and self.vs else "",
            snapshot_id=self.info.snapshot_id if ok and self.info else "",
            path=str(self.info.path) if ok and self.info else "",
            bytes=self.info.size_bytes if ok and self.info else 0,
            error=self.error,
        )


class GroupSnapshots:
    def __init__(self, env: ProvisionerContext, controller: Snapshots) -> None:
        self.env = env
        self.controller = controller
        self.inflight: set[str] = set()
        """`<namespace>/<name>` of the VolumeSnapshots a running group is completing."""

    async def take(self, cmd: SnapshotGroup) -> None:
        """Handles `provisioner.snapshot.group`: takes the group, announces the outcome."""
        result = await self.snapshot(cmd)
        message = (
            subjects.GROUP_SNAPSHOT_FAILED if result.error else subjects.GROUP_SNAPSHOT_CREATED
        )
        await self.env.announce.publish(message, result, f"{cmd.group_id}/{cmd.operation_id}")

    async def snapshot(self, cmd: SnapshotGroup) -> GroupSnapshotResult:
        """Take the group (or find it taken) and say what each claim got."""
        if self.env.vsnapshots is None:
            return self._result(cmd, [], 0.0, "the cluster does not serve VolumeSnapshots")
        vclass = self.env.snapshot_class(cmd.snapshot_class)
        if cmd.snapshot_class and vclass is None:
            error = f"VolumeSnapshotClass {cmd.snapshot_class} does not exist"
            return self._result(cmd, [], 0.0, error)
        members = [self._resolve(c.namespace, c.claim) for c in cmd.claims]
        todo: list[Member] = []
        try:
            for m in members:
                if not m.error:
                    await self._prepare(cmd, m, vclass or {})
            todo = [m for m in members if not m.error and m.record and m.record.state != "Ready"]
            spread = await asyncio.to_thread(self._snapshot_all, todo)
            for m in members:
                if not m.error:
                    await self._finish(cmd, m, vclass or {}, spread)
                elif m.vs is not None:  # nothing to keep: the controller cleans up after it
                    await self.env.kube.delete(
                        SNAPSHOT_API, KIND, m.vs["metadata"]["name"], m.namespace
                    )
        except KubeError as exc:
            raise TemporaryError(f"group {cmd.group_id}: Kubernetes API: {exc}", 2) from exc
        finally:
            for m in members:
                if m.inflight:
                    self.inflight.discard(m.inflight)
                    self.env.queue.add(("snapshot", m.inflight))
        if not todo:  # a repeat: the spread measured when the group was taken
            spread = await self._recorded_spread(members)
        failed = all(m.error for m in members)
        return self._result(cmd, members, spread, "no claim could be snapshotted" if failed else "")

    def _resolve(self, namespace: str, claim_name: str) -> Member:
        m = Member(namespace, claim_name)
        claim = self.env.claim(namespace, claim_name)
        volume = self.env.volumes.get(ClaimView(claim).volume_name if claim else "")
        if claim is None:
            m.error = f"claim {namespace}/{claim_name} does not exist"
        elif volume is None or volume.state not in ("Provisioned", "Bound"):
            m.error = f"claim {namespace}/{claim_name} is not bound to a Vessel volume"
        elif (backend := self.env.backends.get(volume.backend)) is None:
            m.error = f"backend {volume.backend} of claim {namespace}/{claim_name} is not served"
        elif "snapshots" not in backend.capabilities:
            m.error = f"backend {backend.name} cannot take snapshots (no 'snapshots' capability)"
        else:
            m.volume_id, m.backend = volume.volume_id, backend
        return m

    async def _prepare(self, cmd: SnapshotGroup, m: Member, vclass: KubeObject) -> None:
        """The VolumeSnapshot (created, or found from an earlier attempt) and its record."""
        name = snapshot_name(cmd.group_id, m.claim)
        m.inflight = f"{m.namespace}/{name}"
        self.inflight.add(m.inflight)
        spec: KubeObject = {"source": {"persistentVolumeClaimName": m.claim}}
        if vclass:
            spec["volumeSnapshotClassName"] = vclass["metadata"]["name"]
        body = {
            "apiVersion": SNAPSHOT_API,
            "kind": KIND,
            "metadata": {
                "name": name,
                "namespace": m.namespace,
                "labels": {GROUP_LABEL: cmd.group_id, "vessel.io/cluster": self.env.cluster_id},
                "finalizers": [FINALIZER],
            },
            "spec": spec,
        }
        try:
            m.vs = await self.env.kube.create(body)
        except AlreadyExists:
            m.vs = await self.env.kube.get(SNAPSHOT_API, KIND, name, m.namespace)
        if m.vs is None or (m.vs["metadata"].get("labels") or {}).get(GROUP_LABEL) != cmd.group_id:
            m.error = f"VolumeSnapshot {m.namespace}/{name} exists and is not of this group"
            m.vs = None
            return
        meta = m.vs["metadata"]
        assert m.backend is not None
        m.record = await self.env.snapshots.create(
            SnapshotRecord(
                cluster=self.env.cluster_id,
                snapshot_id=snapshot_id_of(m.vs),
                volume_id=m.volume_id,
                backend=m.backend.name,
                namespace=m.namespace,
                name=name,
                uid=meta["uid"],
                content=content_name(m.vs),
                deletion_policy=vclass.get("deletionPolicy") or "Delete",
                state="Creating",
            )
        )

    @staticmethod
    def _snapshot_all(todo: list[Member]) -> float:
        """The backend snapshots, back to back; the seconds from the first to the last."""
        started = time.monotonic()
        for m in todo:
            assert m.backend is not None and m.record is not None
            try:
                m.info = m.backend.create_snapshot(m.volume_id, m.record.snapshot_id)
            except BackendError as exc:
                m.error = f"claim {m.namespace}/{m.claim}: {exc}"
        return time.monotonic() - started if todo else 0.0

    async def _finish(
        self, cmd: SnapshotGroup, m: Member, vclass: KubeObject, spread: float
    ) -> None:
        assert m.backend is not None and m.record is not None and m.vs is not None
        record = m.record
        if m.info is None:  # taken by an earlier attempt
            m.info = await asyncio.to_thread(
                m.backend.get_snapshot, record.volume_id, record.snapshot_id
            )
            if m.info is None:
                m.error = f"snapshot {record.snapshot_id} of {m.claim} vanished from its backend"
                return
        if record.state != "Ready":
            record = record.model_copy(
                update={
                    "state": "Ready",
                    "size_bytes": m.info.size_bytes,
                    "created_at": m.info.created_at,
                }
            )
            await ensure_content(
                self.env,
                m.vs,
                record,
                vclass,
                labels={GROUP_LABEL: cmd.group_id},
                annotations={SPREAD_ANNOTATION: f"{spread:.6f}"},
            )
            await self.env.announce.publish(
                subjects.SNAPSHOT_CREATED, self.controller._payload(record), record.snapshot_id
            )
            m.record = await self.env.snapshots.save(record)
        await self.controller._publish_status(m.vs, m.record)

    async def _recorded_spread(self, members: list[Member]) -> float:
        for m in members:
            if m.record is not None and not m.error:
                content = await self.env.kube.get(
                    SNAPSHOT_API, "VolumeSnapshotContent", m.record.content
                )
                text = ((content or {}).get("metadata", {}).get("annotations") or {}).get(
                    SPREAD_ANNOTATION
                )
                if text:
                    return float(text)
        return 0.0

    def _result(
        self, cmd: SnapshotGroup, members: list[Member], spread: float, error: str
    ) -> GroupSnapshotResult:
        log.info(
            "group %s: %d of %d claims, spread %.4fs%s",
            cmd.group_id,
            sum(1 for m in members if not m.error),
            len(cmd.claims),
            spread,
            f" ({error})" if error else "",
        )
        return GroupSnapshotResult(
            cluster=self.env.cluster_id,
            operation_id=cmd.operation_id,
            group_id=cmd.group_id,
            members=[m.result() for m in members],
            spread_seconds=round(spread, 6),
            error=error,
        )
