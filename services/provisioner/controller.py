"""The provisioner of one cluster: informers feed a keyed work queue; workers reconcile.

Watched (list + watch, resumed from the last resourceVersion, relisted on 410): claims,
PVs, StorageClasses and, where the API serves them, VolumeSnapshots and their classes.
Keys: `claim` (provision, announce the bind, expand, revert in place), `pv` (reclaim a
released PV), `volume` (a record without its PV: finish a deletion, reclaim an orphan),
`snapshot`.
Nothing is reconciled before every cache is synced; then every record is checked once
(repairing whatever a crash interrupted) and again every `resync_seconds`.
"""

from __future__ import annotations

import asyncio
import logging

from services.provisioner.adapters.base import StorageBackend
from services.provisioner.announce import Announcer
from services.provisioner.capacity import CapacityWatch
from services.provisioner.claims import ClaimRejected, is_ours, needs_volume, pick_class
from services.provisioner.context import SNAPSHOT_API, ProvisionerContext
from services.provisioner.grants import waits_on
from services.provisioner.group_snapshots import GroupSnapshots
from services.provisioner.pools import Pool, default_pools
from services.provisioner.provision import Provisioning
from services.provisioner.reclaim import Reclaimer
from services.provisioner.resize import Resizer
from services.provisioner.revert import Reverter, revert_requested
from services.provisioner.snapshots import Snapshots
from services.provisioner.state import RecordStore, SnapshotRecord, VolumeRecord
from services.provisioner.workqueue import Key, Retry, WorkQueue
from vessel.bus.errors import KeyExistsError
from vessel.bus.nats_port import Bus, KeyValue
from vessel.kube.client import KubeCluster
from vessel.kube.errors import Conflict, KubeError, NotFound
from vessel.kube.informer import Informer
from vessel.kube.objects import ClaimView, KubeObject, StorageClassView
from vessel.stopping import cancel_and_wait

log = logging.getLogger("vessel.provisioner")


class Provisioner:
    """The reconciler of one cluster; it builds the service's context (`env`), since the
    work queue every part shares dispatches to it. `ready` is set once the caches are
    synced: the inbox handles commands and queries only after that."""

    def __init__(
        self,
        cluster_id: str,
        kube: KubeCluster,
        bus: Bus,
        volumes: KeyValue,
        backends: list[StorageBackend],
        *,
        snapshots: KeyValue,
        pools: list[Pool] | None = None,
        resync_seconds: float = 15.0,
        autogrow_seconds: float = 30.0,
        workers: int = 8,
        node_name: str | None = None,
    ) -> None:
        self.resync_seconds = resync_seconds
        self.autogrow_seconds = autogrow_seconds
        queue = WorkQueue(self._handle, workers=workers, max_backoff=min(30.0, resync_seconds))
        self.env = ProvisionerContext(
            cluster_id=cluster_id,
            kube=kube,
            announce=Announcer(bus, kube, cluster_id),
            volumes=RecordStore(volumes, cluster_id, VolumeRecord),
            snapshots=RecordStore(snapshots, cluster_id, SnapshotRecord),
            backends={b.name: b for b in backends},
            pools=pools if pools is not None else default_pools(backends),
            queue=queue,
            claims=Informer(kube, "v1", "PersistentVolumeClaim"),
            pvs=Informer(kube, "v1", "PersistentVolume"),
            classes=Informer(kube, "storage.k8s.io/v1", "StorageClass"),
            node_name=node_name,
        )
        self.capacity = CapacityWatch(self.env)
        self.env.on_capacity_change = self.capacity.check
        self.provisioning = Provisioning(self.env)
        self.reclaimer = Reclaimer(self.env)
        self.resizer = Resizer(self.env)
        self.snapshot_controller = Snapshots(self.env)
        self.groups = GroupSnapshots(self.env, self.snapshot_controller)
        self.reverter = Reverter(self.env)
        self.ready = asyncio.Event()

    async def run(self) -> None:
        env = self.env
        await env.volumes.load()
        await env.snapshots.load()
        informers = [
            (env.claims, self._on_claim),
            (env.pvs, self._on_pv),
            (env.classes, self._on_class),
        ]
        if await self._serves(SNAPSHOT_API, "VolumeSnapshot"):
            env.vsnapshots = Informer(env.kube, SNAPSHOT_API, "VolumeSnapshot")
            env.vsclasses = Informer(env.kube, SNAPSHOT_API, "VolumeSnapshotClass")
            informers += [(env.vsnapshots, self._on_snapshot), (env.vsclasses, self._ignore)]
        tasks = [asyncio.create_task(i.run(handler)) for i, handler in informers]
        try:
            await asyncio.gather(*(i.synced.wait() for i, _ in informers))
            self.sweep()
            self.ready.set()
            log.info(
                "provisioner of %s ready: %d volumes, pools %s",
                env.cluster_id,
                len(env.volumes.all()),
                ", ".join(p.id for p in env.pools),
            )
            tasks += [
                asyncio.create_task(env.queue.run()),
                asyncio.create_task(self._resync()),
                asyncio.create_task(self.resizer.autogrow_loop(self.autogrow_seconds)),
            ]
            await asyncio.gather(*tasks)
        finally:
            await cancel_and_wait(tasks)

    async def _serves(self, api_version: str, kind: str) -> bool:
        delay = 0.5
        while True:
            try:
                await self.env.kube.list(api_version, kind)
            except NotFound:
                log.info("%s %s is not served: snapshots are off", api_version, kind)
                return False
            except KubeError as exc:
                log.warning("listing %s: %s; retrying in %.1fs", kind, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            return True

    def sweep(self) -> None:
        """Queue everything: each record, claim, PV and snapshot is checked again."""
        env = self.env
        for record in env.volumes.all():
            env.queue.add(("volume", record.volume_id))
        for key in env.claims.cache:
            env.queue.add(("claim", key))
        for key in env.pvs.cache:
            env.queue.add(("pv", key.lstrip("/")))
        for key in env.vsnapshots.cache if env.vsnapshots else {}:
            env.queue.add(("snapshot", key))

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.resync_seconds)
            self.sweep()

    async def _on_claim(self, type_: str, claim: KubeObject) -> None:
        meta = claim["metadata"]
        if type_ == "DELETED":
            self.env.announce.forget(meta["uid"])
            self.env.queue.add(("volume", f"pvc-{meta['uid']}"))
            return
        self.env.queue.add(("claim", f"{meta['namespace']}/{meta['name']}"))
        for key, other in self.env.claims.cache.items():  # clones waiting for this claim
            if waits_on(other, meta["namespace"], meta["name"]):
                self.env.queue.add(("claim", key))
        if self.env.vsnapshots is not None:  # snapshots waiting for this claim's volume
            for key, vs in self.env.vsnapshots.cache.items():
                if vs["metadata"]["namespace"] == meta["namespace"] and not vs.get("status"):
                    self.env.queue.add(("snapshot", key))

    async def _on_pv(self, type_: str, pv: KubeObject) -> None:
        if type_ != "DELETED":
            self.env.queue.add(("pv", pv["metadata"]["name"]))

    async def _on_class(self, type_: str, storage_class: KubeObject) -> None:
        name = StorageClassView(storage_class).name
        for key, claim in self.env.claims.cache.items():
            if ClaimView(claim).storage_class == name:
                self.env.queue.add(("claim", key))

    async def _on_snapshot(self, type_: str, vs: KubeObject) -> None:
        meta = vs["metadata"]
        if type_ == "DELETED":
            self.env.announce.forget(meta["uid"])
            return
        self.env.queue.add(("snapshot", f"{meta['namespace']}/{meta['name']}"))
        for key, claim in self.env.claims.cache.items():  # clones waiting for this snapshot
            if revert_requested(claim) is not None or waits_on(claim, meta["namespace"]):
                self.env.queue.add(("claim", key))

    async def _ignore(self, type_: str, obj: KubeObject) -> None:
        return

    async def _handle(self, key: Key) -> None:
        kind, name = key
        try:
            if kind == "claim":
                await self._claim(*name.split("/", 1))
            elif kind == "pv":
                await self.reclaimer.reconcile_pv(name)
            elif kind == "volume":
                await self.reclaimer.check_volume(name)
            elif kind == "snapshot" and name not in self.groups.inflight:
                await self.snapshot_controller.reconcile(*name.split("/", 1))
        except (Conflict, KeyExistsError) as exc:  # someone wrote first: read again, retry
            raise Retry(str(exc)) from exc
        except KubeError as exc:
            raise Retry(f"Kubernetes API: {exc}") from exc

    async def _claim(self, namespace: str, name: str) -> None:
        env = self.env
        claim = env.claim(namespace, name)
        if claim is None or claim["metadata"].get("deletionTimestamp"):
            return
        if needs_volume(claim):
            volume_id = f"pvc-{claim['metadata']['uid']}"
            self.reclaimer.inflight.add(volume_id)
            try:
                storage_class = pick_class(claim, list(env.classes.cache.values()))
                if storage_class is None or not is_ours(storage_class):
                    return
                await self.provisioning.provision(claim, storage_class)
            except ClaimRejected as exc:
                await env.announce.claim_failed(claim, exc.reason, str(exc))
                raise Retry(str(exc)) from exc
            finally:
                self.reclaimer.inflight.discard(volume_id)
            return
        view = ClaimView(claim)
        record = env.volumes.get(view.volume_name)
        if record is None or record.claim_uid not in ("", view.uid):
            return
        if view.phase == "Bound":
            await self.provisioning.announce_bound(record)
            current = env.volumes.get(record.volume_id)
            if current is not None and current.state == "Bound":
                await self.resizer.on_bound_claim(claim, current)
        current = env.volumes.get(record.volume_id)
        if current is not None and revert_requested(claim) is not None:
            await self.reverter.reconcile(claim, current)
