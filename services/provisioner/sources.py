"""Where a new volume comes from: nothing (a fresh volume), a clone source, or an import."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from services.provisioner.claims import ClaimRejected, DataSource
from services.provisioner.context import ProvisionerContext
from services.provisioner.grants import check_grant
from services.provisioner.matching import NoMatch, Requirements, matching_pools
from services.provisioner.state import VolumeOrigin, VolumeRecord
from vessel.kube.objects import ClaimView, KubeObject

LIVE = ("Provisioned", "Bound")


@dataclass(frozen=True)
class Origin:
    kind: VolumeOrigin
    backend: str = ""
    pool: str = ""
    source: str = ""
    source_volume: str = ""
    source_snapshot: str = ""


def snapshot_id_of(snapshot: KubeObject) -> str:
    return f"snapshot-{snapshot['metadata']['uid']}"


def clone_origin(
    env: ProvisionerContext, claim: KubeObject, ds: DataSource, size_bytes: int
) -> Origin:
    namespace = ds.namespace or claim["metadata"]["namespace"]
    what = f"{ds.kind} {namespace}/{ds.name}"
    if ds.kind == "PersistentVolumeClaim":
        source = env.claim(namespace, ds.name)
        if source is None:
            raise ClaimRejected("InvalidDataSource", f"dataSource {what} does not exist")
        check_grant(source, ds.kind, claim["metadata"]["namespace"])
        record = env.volumes.get(ClaimView(source).volume_name)
        if record is None or record.state not in LIVE:
            raise ClaimRejected(
                "InvalidDataSource", f"dataSource {what} is not bound to a Vessel volume (yet)"
            )
        origin = Origin(
            "clone", record.backend, record.pool, f"{ds.kind}/{ds.name}", record.volume_id
        )
        minimum = record.size_bytes
    else:
        snapshot = env.snapshot(namespace, ds.name)
        if snapshot is None:
            raise ClaimRejected("InvalidDataSource", f"dataSource {what} does not exist")
        check_grant(snapshot, ds.kind, claim["metadata"]["namespace"])
        snap = env.snapshots.get(snapshot_id_of(snapshot))
        ready = (snapshot.get("status") or {}).get("readyToUse") is True
        if snap is None or snap.state != "Ready" or not ready:
            raise ClaimRejected(
                "InvalidDataSource", f"dataSource {what} is not a ready Vessel snapshot (yet)"
            )
        volume = env.volumes.get(snap.volume_id)
        pools = env.pools_of(snap.backend)
        pool = volume.pool if volume else (pools[0].name if pools else "default")
        origin = Origin(
            "clone",
            snap.backend,
            pool,
            f"{ds.kind}/{ds.name}",
            snap.volume_id,
            snap.snapshot_id,
        )
        minimum = snap.size_bytes
    backend = env.backends.get(origin.backend)
    if backend is None:
        raise ClaimRejected(
            "InvalidDataSource",
            f"dataSource {what} lives on backend {origin.backend}, "
            f"which cluster {env.cluster_id} no longer configures",
        )
    if "clones" not in backend.capabilities:
        raise ClaimRejected(
            "InvalidDataSource",
            f"backend {backend.name} ({backend.type}) cannot clone {what}: no 'clones' capability",
        )
    if size_bytes < minimum:
        raise ClaimRejected(
            "InvalidSize",
            f"a clone of {what} needs at least {minimum} bytes (its size); the claim asks "
            f"{size_bytes}",
        )
    return origin


def import_origin(
    env: ProvisionerContext, backend_name: str, path: str, req: Requirements
) -> Origin:
    backend = env.backends.get(backend_name)
    if backend is None:
        raise ClaimRejected(
            "ImportFailed",
            f"backend {backend_name!r} is not configured in cluster {env.cluster_id} "
            f"(configured: {', '.join(sorted(env.backends)) or 'none'})",
        )
    root = getattr(backend, "root", None)
    if not isinstance(root, Path):
        raise ClaimRejected("ImportFailed", f"backend {backend_name} cannot import volumes")
    full = str(root / path)
    for record in env.volumes.all():
        same_path = record.backend == backend_name and record.path == full
        same_source = record.origin == "import" and record.source == f"{backend_name}/{path}"
        if same_path or same_source:
            raise ClaimRejected(
                "ImportFailed", f"{backend_name}/{path} is already managed: {_by(record)}"
            )
    try:
        pool = matching_pools(env.pools_of(backend_name), req)[0]
    except NoMatch as exc:
        raise ClaimRejected(
            "NoMatchingPool", f"importing into backend {backend_name}: {exc}"
        ) from exc
    return Origin("import", backend_name, pool.name, f"{backend_name}/{path}")


def _by(record: VolumeRecord) -> str:
    return f"volume {record.volume_id} of claim {record.namespace}/{record.claim}"
