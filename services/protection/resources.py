"""Pure transformations of Kubernetes objects for backup and restore."""

from __future__ import annotations

import copy
from typing import Any

Obj = dict[str, Any]
SERVER_FIELDS = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "ownerReferences",
)
BINDING_ANNOTATIONS = (
    "pv.kubernetes.io/bind-completed",
    "pv.kubernetes.io/bound-by-controller",
    "volume.kubernetes.io/storage-provisioner",
    "volume.beta.kubernetes.io/storage-provisioner",
)
# Restore order: what others refer to comes first; workloads start only after their data.
ORDER = [
    "Namespace",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "Role",
    "RoleBinding",
    "PersistentVolumeClaim",
    "Service",
    "Ingress",
]
WORKLOADS = ["Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job"]


def sanitize(obj: Obj) -> Obj:
    """The object as a user would write it: no server-set fields, no status, no binding."""
    clean = copy.deepcopy(obj)
    clean.pop("status", None)
    meta = clean.setdefault("metadata", {})
    for field in SERVER_FIELDS:
        meta.pop(field, None)
    annotations = meta.get("annotations") or {}
    for key in BINDING_ANNOTATIONS:
        annotations.pop(key, None)
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    if clean.get("kind") == "PersistentVolumeClaim":
        clean.get("spec", {}).pop("volumeName", None)
    if clean.get("kind") == "Service":
        spec = clean.get("spec", {})
        for field in ("clusterIP", "clusterIPs"):
            spec.pop(field, None)
    return clean


def remap_namespace(obj: Obj, mapping: dict[str, str]) -> Obj:
    moved = copy.deepcopy(obj)
    meta = moved["metadata"]
    if meta.get("namespace"):
        meta["namespace"] = mapping.get(meta["namespace"], meta["namespace"])
    return moved


def restore_rank(obj: Obj) -> int:
    kind = obj.get("kind", "")
    if kind in ORDER:
        return ORDER.index(kind)
    if kind in WORKLOADS:
        return len(ORDER) + 1 + WORKLOADS.index(kind)
    return len(ORDER)


def is_workload(obj: Obj) -> bool:
    return obj.get("kind") in WORKLOADS
