"""Claim → record → backend volume → PV, each step idempotent and resumable.

The record (state `Creating`, backend and pool chosen) is stored before the backend is
touched, so a retry or a restarted process creates on the same backend, and a claim that
vanishes mid-way leaves a record the orphan sweep reclaims. Volume ids derive from the
claim's uid, backends create idempotently, and an existing PV is accepted.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from services.provisioner.adapters.base import (
    BackendError,
    InsufficientCapacity,
    InvalidVolume,
    StorageBackend,
    Unsupported,
    VolumeExists,
    VolumeInfo,
)
from services.provisioner.claims import (
    ClaimRejected,
    ClaimRequest,
    data_source,
    import_source,
    parse_claim,
    persistent_volume,
)
from services.provisioner.classes import class_policy
from services.provisioner.context import ProvisionerContext
from services.provisioner.crash import crash_point
from services.provisioner.matching import NoCapacity, NoMatch, Requirements, matching_pools, place
from services.provisioner.pools import Pool
from services.provisioner.sources import Origin, clone_origin, import_origin
from services.provisioner.state import VolumeRecord
from vessel.contracts import subjects
from vessel.contracts.events import CloneCreated, VolumeImported, VolumeProvisioned
from vessel.kube.errors import AlreadyExists
from vessel.kube.objects import KubeObject, StorageClassView

log = logging.getLogger("vessel.provisioner")
LIVE = ("Provisioned", "Bound")


class Provisioning:
    def __init__(self, env: ProvisionerContext) -> None:
        self.env = env

    async def provision(self, claim: KubeObject, storage_class: KubeObject) -> None:
        req = parse_claim(claim, storage_class)
        record = self.env.volumes.get(req.volume_id)
        if record is None:
            record = await self._plan(claim, req)
        if record.state == "Creating":
            record = await self._create(record)
        if record.state in LIVE:
            await self._ensure_pv(req, record)

    async def _plan(self, claim: KubeObject, req: ClaimRequest) -> VolumeRecord:
        requirements, _ = class_policy(req.storage_class)
        storage_class = StorageClassView(req.storage_class)
        source, imported = data_source(claim), import_source(claim)
        async with self.env.placement:
            if imported is not None:
                origin = import_origin(self.env, *imported, requirements)
            elif source is not None:
                origin = clone_origin(self.env, claim, source, req.size_bytes)
            else:
                origin = await self._place(req, requirements)
            record = await self.env.volumes.create(
                VolumeRecord(
                    cluster=self.env.cluster_id,
                    volume_id=req.volume_id,
                    backend=origin.backend,
                    backend_type=self.env.backends[origin.backend].type,
                    pool=origin.pool,
                    size_bytes=req.size_bytes,
                    requested_bytes=req.size_bytes,
                    namespace=req.namespace,
                    claim=req.name,
                    claim_uid=req.uid,
                    storage_class=storage_class.name,
                    reclaim_policy=storage_class.reclaim_policy,
                    state="Creating",
                    origin=origin.kind,
                    source=origin.source,
                    source_volume=origin.source_volume,
                    source_snapshot=origin.source_snapshot,
                )
            )
            if origin.kind != "import":
                self.env.reserved[record.volume_id] = (record.backend, record.size_bytes)
        return record

    async def _place(self, req: ClaimRequest, requirements: Requirements) -> Origin:
        name = StorageClassView(req.storage_class).name
        try:
            candidates = matching_pools(self.env.pools, requirements)
        except NoMatch as exc:
            raise ClaimRejected("NoMatchingPool", f"StorageClass {name}: {exc}") from exc
        free = await self.free_bytes(candidates)
        try:
            pool = place(candidates, free, req.size_bytes)
        except NoCapacity as exc:
            raise ClaimRejected(
                "ProvisioningFailed", f"StorageClass {name} in cluster {self.env.cluster_id}: {exc}"
            ) from exc
        return Origin("new", pool.backend, pool.name)

    async def free_bytes(self, pools: list[Pool]) -> dict[str, int]:
        """Free bytes per pool: its capacity left, within what its backend has free."""
        by_backend: dict[str, int] = {}
        for name in {p.backend for p in pools}:
            backend_free = await asyncio.to_thread(self.env.backends[name].free_bytes)
            by_backend[name] = max(0, backend_free - self.env.reserved_on(name))
        free = {}
        for pool in pools:
            room = by_backend[pool.backend]
            if pool.capacity_bytes is not None:
                room = min(room, max(0, pool.capacity_bytes - self.env.allocated(pool)))
            free[pool.id] = room
        return free

    async def _create(self, record: VolumeRecord) -> VolumeRecord:
        backend = self.env.backends.get(record.backend)
        if backend is None:
            raise ClaimRejected(
                "ProvisioningFailed",
                f"volume {record.volume_id} was placed on backend {record.backend}, which "
                f"cluster {self.env.cluster_id} no longer configures",
            )
        try:
            info = await asyncio.to_thread(self._backend_call, backend, record)
            if self._compressed(record):  # before anything is written to it
                await asyncio.to_thread(backend.compress_volume, record.volume_id)
        except (InsufficientCapacity, InvalidVolume, Unsupported, VolumeExists) as exc:
            await self.env.volumes.remove(record.volume_id)  # place it afresh next time
            reason = "ImportFailed" if record.origin == "import" else "ProvisioningFailed"
            raise ClaimRejected(reason, str(exc)) from exc
        except BackendError as exc:  # may pass on retry, on the same backend
            raise ClaimRejected("ProvisioningFailed", str(exc)) from exc
        finally:
            self.env.reserved.pop(record.volume_id, None)
        crash_point("volume-created")
        done = record.model_copy(
            update={"state": "Provisioned", "path": str(info.path), "size_bytes": info.size_bytes}
        )
        await self._announce_origin(done)
        saved = await self.env.volumes.save(done)
        await self.env.capacity_changed(record.backend)
        return saved

    def _compressed(self, record: VolumeRecord) -> bool:
        pool = next((p for p in self.env.pools_of(record.backend) if p.name == record.pool), None)
        return pool is not None and pool.attributes.get("compression") == "true"

    @staticmethod
    def _backend_call(backend: StorageBackend, record: VolumeRecord) -> VolumeInfo:
        vid, size = record.volume_id, record.size_bytes
        if record.origin == "clone":
            snapshot = record.source_snapshot or None
            return backend.clone_volume(record.source_volume, vid, size, snapshot)
        if record.origin == "import":
            existing = backend.get_volume(vid)  # imported before a crash: it moved already
            if existing is not None:
                return existing
            root = getattr(backend, "root", Path("/nonexistent"))
            path = record.source.partition("/")[2]
            return backend.import_volume(vid, Path(root) / path, size)
        return backend.create_volume(vid, size)

    async def _announce_origin(self, record: VolumeRecord) -> None:
        common = {
            "cluster": record.cluster,
            "namespace": record.namespace,
            "claim": record.claim,
            "volume_id": record.volume_id,
            "backend": record.backend,
            "size_bytes": record.size_bytes,
        }
        subject = self.env.announce.claim_subject(record.namespace, record.claim)
        if record.origin == "clone":
            kind, _, name = record.source.partition("/")
            payload = CloneCreated(
                **common,
                source_kind="VolumeSnapshot"
                if kind == "VolumeSnapshot"
                else "PersistentVolumeClaim",
                source_name=name,
            )
            await self.env.announce.publish(
                subjects.CLONE_CREATED, payload, record.volume_id, subject
            )
        elif record.origin == "import":
            imported = VolumeImported(**common, source=record.source)
            await self.env.announce.publish(
                subjects.VOLUME_IMPORTED, imported, record.volume_id, subject
            )

    async def _ensure_pv(self, req: ClaimRequest, record: VolumeRecord) -> None:
        if self.env.pv(record.volume_id) is not None:
            return
        pv = persistent_volume(
            req,
            self.env.cluster_id,
            record.backend,
            record.path,
            record.pool,
            node=self.env.node_name,
        )
        try:
            await self.env.kube.create(pv)
        except AlreadyExists:
            return
        log.info(
            "provisioned %s/%s as %s on %s:%s",
            req.namespace,
            req.name,
            record.volume_id,
            record.backend,
            record.pool,
        )

    async def announce_bound(self, record: VolumeRecord) -> None:
        """`volume.provisioned` once the claim is Bound: published, then recorded."""
        if record.state != "Provisioned":
            return
        await self.env.announce.publish(
            subjects.VOLUME_PROVISIONED,
            VolumeProvisioned(
                cluster=record.cluster,
                namespace=record.namespace,
                claim=record.claim,
                pv_name=record.volume_id,
                volume_id=record.volume_id,
                backend=record.backend,
                backend_type=record.backend_type,
                size_bytes=record.size_bytes,
                path=record.path,
            ),
            record.volume_id,
            self.env.announce.claim_subject(record.namespace, record.claim),
        )
        await self.env.volumes.save(record.model_copy(update={"state": "Bound"}))
