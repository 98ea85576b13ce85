"""From an app's member objects to its record (`AppRecord`, what the `inventory` bucket
holds): workloads, claims, dependencies and state.

Pure functions. State: Failed when a workload is not ready, a Job failed, a container is
in CrashLoopBackOff, a claim is Lost or Pending for longer than the grace period, or the
Helm release failed; Removed when a user-defined app selects nothing; else Available.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from services.discovery.kinds import WORKLOAD_KINDS
from vessel.contracts.events import AppRecord
from vessel.contracts.models import ClaimInfo, HelmRelease, ResourceRef, WorkloadStatus
from vessel.kube.client import quantity_bytes
from vessel.kube.objects import (
    ClaimView,
    KubeObject,
    PersistentVolumeView,
    annotations_of,
    labels_of,
    meta,
)

Grouping = Literal["label", "namespace", "helm", "user"]
PROVISIONER = "vessel.io/provisioner"
VOLUME_ID_ANNOTATION = "vessel.io/volume-id"
Key = tuple[str, str]
"""(kind, name) of an object within its namespace."""
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


class ClusterScoped(Mapping[str, KubeObject]):
    """An informer cache of a cluster-scoped kind (keys `/<name>`), by name."""

    def __init__(self, cache: dict[str, KubeObject]) -> None:
        self.cache = cache

    def __getitem__(self, name: str) -> KubeObject:
        return self.cache[f"/{name}"]

    def __iter__(self) -> Iterator[str]:
        return (key[1:] for key in self.cache)

    def __len__(self) -> int:
        return len(self.cache)


@dataclass
class ClusterFacts:
    """What grouping a namespace needs beyond its own objects."""

    cluster: str
    pvs: Mapping[str, KubeObject] = field(default_factory=dict)
    classes: Mapping[str, KubeObject] = field(default_factory=dict)
    releases: Callable[[str, str], HelmRelease | None] = lambda ns, name: None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    pending_grace: float = 300.0
    """Seconds a claim may stay Pending before its app is Failed."""


@dataclass
class Built:
    record: AppRecord
    recheck_at: datetime | None = None
    """When the state may change with no event (a Pending claim reaching the grace)."""


def key_of(obj: KubeObject) -> Key:
    return obj["kind"], meta(obj)["name"]


def controller_owner(obj: KubeObject) -> dict[str, Any] | None:
    owners = meta(obj).get("ownerReferences") or []
    return next((o for o in owners if o.get("controller")), owners[0] if owners else None)


def derived(obj: KubeObject) -> bool:
    """Made by a controller discovery watches (pods, a CronJob's Jobs): not listed as a
    resource of the app, as its owner recreates it; still counted for the app's state."""
    if obj.get("kind") == "Pod":
        return True
    owner = controller_owner(obj)
    return bool(owner and owner.get("controller") and owner.get("kind") in WORKLOAD_KINDS)


def ref(obj: KubeObject) -> ResourceRef | None:
    """The object's reference; None for a name the contract cannot hold (e.g. `a:b`)."""
    name = str(meta(obj).get("name", ""))
    if not _K8S_NAME.match(name):
        return None
    return ResourceRef(
        api_version=obj["apiVersion"],
        kind=obj["kind"],
        name=name,
        namespace=meta(obj).get("namespace"),
    )


def pod_spec(workload: KubeObject) -> dict[str, Any]:
    spec = workload.get("spec") or {}
    if workload.get("kind") == "Pod":
        return spec
    if workload.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return (spec.get("template") or {}).get("spec") or {}


def workload_status(obj: KubeObject) -> WorkloadStatus:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    images = [str(c.get("image")) for c in pod_spec(obj).get("containers") or [] if c.get("image")]
    kind = obj["kind"]
    if kind == "DaemonSet":
        desired = int(status.get("desiredNumberScheduled") or 0)
        ready = int(status.get("numberReady") or 0)
    elif kind in ("Deployment", "StatefulSet"):
        replicas = spec.get("replicas")
        desired = 1 if replicas is None else int(replicas)
        ready = int(status.get("readyReplicas") or 0)
    else:  # Job, CronJob: nothing to be ready
        desired = ready = 0
    return WorkloadStatus(
        kind=kind, name=meta(obj)["name"], desired=desired, ready=ready, images=images
    )


def claim_info(obj: KubeObject, pvs: Mapping[str, KubeObject]) -> ClaimInfo:
    claim = ClaimView(obj)
    try:
        requested = quantity_bytes(claim.requested_storage or "0")
    except ValueError:
        requested = 0
    volume = claim.volume_name or None
    pv = pvs.get(volume) if volume else None
    backend = None
    if pv is not None:
        annotations = annotations_of(pv)
        if annotations.get("pv.kubernetes.io/provisioned-by") == PROVISIONER:
            backend = annotations.get(VOLUME_ID_ANNOTATION) or volume
    return ClaimInfo(
        name=meta(obj)["name"],
        storage_class=claim.storage_class,
        requested_bytes=requested,
        volume_name=volume,
        phase=claim.phase or "Pending",
        backend_volume=backend,
    )


def _timestamp(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None


def problems(
    members: Iterable[KubeObject], facts: ClusterFacts
) -> tuple[list[str], datetime | None]:
    """Why the app is Failed (sorted), and when a Pending claim will be too old."""
    reasons: list[str] = []
    recheck: datetime | None = None
    grace = timedelta(seconds=facts.pending_grace)
    for obj in members:
        kind, name, status = obj["kind"], meta(obj)["name"], obj.get("status") or {}
        if kind in ("Deployment", "StatefulSet", "DaemonSet") and not derived(obj):
            ws = workload_status(obj)
            if ws.ready < ws.desired:
                reasons.append(f"{kind} {name}: {ws.ready}/{ws.desired} ready")
        elif kind == "Job":
            for c in status.get("conditions") or []:
                if c.get("type") == "Failed" and c.get("status") == "True":
                    reasons.append(f"Job {name} failed")
        elif kind == "Pod":
            states = status.get("initContainerStatuses", []) + status.get("containerStatuses", [])
            for c in states:
                if c.get("waiting") == "CrashLoopBackOff":
                    reasons.append(f"Pod {name}: container {c.get('name')} in CrashLoopBackOff")
        elif kind == "PersistentVolumeClaim":
            phase = ClaimView(obj).phase or "Pending"
            if phase == "Lost":
                reasons.append(f"PersistentVolumeClaim {name} is Lost")
            elif phase == "Pending":
                created = _timestamp(meta(obj).get("creationTimestamp"))
                if created is not None and facts.now - created >= grace:
                    reasons.append(
                        f"PersistentVolumeClaim {name} Pending for over {facts.pending_grace:g}s"
                    )
                elif created is not None:
                    due = created + grace
                    recheck = due if recheck is None else min(recheck, due)
    return sorted(reasons), recheck


def dependencies(claims: Iterable[KubeObject], facts: ClusterFacts) -> list[ResourceRef]:
    """The PVs bound to the claims and the StorageClasses of both."""
    deps: dict[tuple[str, str], ResourceRef] = {}

    def add(api_version: str, kind: str, name: Any) -> None:
        if isinstance(name, str) and _K8S_NAME.match(name):
            deps[(kind, name)] = ResourceRef(api_version=api_version, kind=kind, name=name)

    for obj in claims:
        claim = ClaimView(obj)
        add("storage.k8s.io/v1", "StorageClass", claim.storage_class)
        volume = claim.volume_name
        if volume:
            add("v1", "PersistentVolume", volume)
            pv = facts.pvs.get(volume)
            if pv is not None:
                add("storage.k8s.io/v1", "StorageClass", PersistentVolumeView(pv).storage_class)
    return [deps[k] for k in sorted(deps)]


def common_labels(objects: list[KubeObject]) -> dict[str, str]:
    if not objects:
        return {}
    shared = dict(labels_of(objects[0]))
    for obj in objects[1:]:
        other = labels_of(obj)
        shared = {k: v for k, v in shared.items() if other.get(k) == v}
    return shared


def build_app(
    facts: ClusterFacts,
    namespace: str,
    name: str,
    grouping: Grouping,
    members: list[KubeObject],
    *,
    selector: dict[str, str] | None = None,
    namespaces: list[str] | None = None,
    release: HelmRelease | None = None,
) -> Built:
    listed = [m for m in members if not derived(m)]
    workloads = [m for m in listed if m["kind"] in WORKLOAD_KINDS]
    claims = [m for m in members if m["kind"] == "PersistentVolumeClaim"]
    reasons, recheck = problems(members, facts)
    if release is not None and release.status == "failed":
        reasons.append(f"Helm release {release.name} revision {release.revision} failed")
    state: Literal["Available", "Failed", "Removed"] = "Failed" if reasons else "Available"
    if grouping == "user" and not members:
        state, reasons = "Removed", ["selects no resources"]

    def refs(objs: Iterable[KubeObject]) -> list[ResourceRef]:
        found = (ref(o) for o in objs)
        return sorted(
            (r for r in found if r is not None), key=lambda r: (r.kind, r.namespace or "", r.name)
        )

    record = AppRecord(
        cluster=facts.cluster,
        namespace=namespace,
        name=name,
        grouping=grouping,
        selector=selector or {},
        state=state,
        workloads=refs(workloads),
        claims=sorted((claim_info(c, facts.pvs) for c in claims), key=lambda c: c.name),
        resources=refs(listed),
        namespaces=namespaces or [],
        helm=release,
        workload_status=sorted(
            (workload_status(w) for w in workloads if ref(w) is not None),
            key=lambda w: (w.kind, w.name),
        ),
        dependencies=dependencies(claims, facts),
        reasons=reasons,
        labels=common_labels(workloads),
    )
    return Built(record, recheck if state != "Removed" else None)
