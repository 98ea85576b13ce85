"""Pure grouping of a cluster's objects into applications.

An object belongs to the app named by its `app.kubernetes.io/instance` label, else its
`app` label; objects with neither belong to their namespace's app. A claim belongs to
the app of the workload that mounts it when it has no label of its own.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from vessel.contracts.events import AppRecord
from vessel.contracts.models import ClaimInfo, ResourceRef
from vessel.kube.client import quantity_bytes

Obj = dict[str, Any]
APP_LABELS = ("app.kubernetes.io/instance", "app")
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet"}
SYSTEM_NAMESPACES = {"kube-system", "kube-public", "kube-node-lease"}


def app_label(obj: Obj) -> tuple[str, str] | None:
    labels = obj.get("metadata", {}).get("labels") or {}
    for key in APP_LABELS:
        if labels.get(key):
            return key, labels[key]
    return None


def mounts_claim(workload: Obj, claim: str) -> bool:
    """The workload's pods mount `claim`: by volume, or as a StatefulSet claim of any
    ordinal (also ordinals above the current replicas: scaled-down claims are kept)."""
    pod = workload.get("spec", {}).get("template", {}).get("spec", {})
    for volume in pod.get("volumes") or []:
        if (volume.get("persistentVolumeClaim") or {}).get("claimName") == claim:
            return True
    for template in workload.get("spec", {}).get("volumeClaimTemplates") or []:
        base = f"{template['metadata']['name']}-{workload['metadata']['name']}-"
        if claim.startswith(base) and claim[len(base) :].isdigit():
            return True
    return False


def workload_ready(workload: Obj) -> bool:
    status = workload.get("status", {})
    if workload.get("kind") == "DaemonSet":
        return int(status.get("numberReady") or 0) >= int(status.get("desiredNumberScheduled") or 0)
    wanted = workload.get("spec", {}).get("replicas", 1)
    return int(status.get("readyReplicas") or 0) >= int(wanted or 0)


def _ref(obj: Obj) -> ResourceRef:
    meta = obj["metadata"]
    return ResourceRef(
        api_version=obj["apiVersion"],
        kind=obj["kind"],
        name=meta["name"],
        namespace=meta.get("namespace"),
    )


def _claim(obj: Obj) -> ClaimInfo:
    size = (obj.get("spec", {}).get("resources", {}).get("requests") or {}).get("storage", "0")
    try:
        requested = quantity_bytes(size)
    except ValueError:
        requested = 0
    return ClaimInfo(
        name=obj["metadata"]["name"],
        storage_class=obj["spec"].get("storageClassName"),
        requested_bytes=requested,
        volume_name=obj["spec"].get("volumeName"),
        phase=obj.get("status", {}).get("phase", "Pending"),
    )


def group_apps(cluster: str, objects: list[Obj]) -> dict[str, AppRecord]:
    """Applications of one cluster keyed by app id; `objects` are of any namespaced kind."""
    members: dict[tuple[str, str], list[Obj]] = defaultdict(list)
    selectors: dict[tuple[str, str], dict[str, str]] = {}
    labelled_workloads: list[tuple[tuple[str, str], Obj]] = []
    loose: list[Obj] = []
    for obj in objects:
        ns = obj["metadata"].get("namespace")
        if not ns or ns in SYSTEM_NAMESPACES:
            continue
        label = app_label(obj)
        if label is None:
            loose.append(obj)
            continue
        key = (ns, label[1])
        members[key].append(obj)
        current = next(iter(selectors.get(key, {})), None)
        if current is None or APP_LABELS.index(label[0]) < APP_LABELS.index(current):
            selectors[key] = {label[0]: label[1]}  # the more specific label wins
        if obj["kind"] in WORKLOAD_KINDS:
            labelled_workloads.append((key, obj))
    for obj in loose:
        ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        owner = None
        if obj["kind"] == "PersistentVolumeClaim":
            owner = next(
                (key for key, w in labelled_workloads if key[0] == ns and mounts_claim(w, name)),
                None,
            )
        members[owner or (ns, ns)].append(obj)
    apps = {}
    for (ns, name), objs in members.items():
        workloads = [o for o in objs if o["kind"] in WORKLOAD_KINDS]
        claims = [o for o in objs if o["kind"] == "PersistentVolumeClaim"]
        if not workloads and not claims:
            continue  # config without anything running is not an application
        failed = any(not workload_ready(w) for w in workloads) or any(
            c.get("status", {}).get("phase") == "Lost" for c in claims
        )
        record = AppRecord(
            cluster=cluster,
            namespace=ns,
            name=name,
            grouping="label" if (ns, name) in selectors else "namespace",
            selector=selectors.get((ns, name), {}),
            state="Failed" if failed else "Available",
            workloads=sorted((_ref(w) for w in workloads), key=lambda r: (r.kind, r.name)),
            claims=sorted((_claim(c) for c in claims), key=lambda c: c.name),
            resources=sorted((_ref(o) for o in objs), key=lambda r: (r.kind, r.name)),
        )
        apps[record.id] = record
    return apps
