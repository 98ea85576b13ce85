"""Pure transformations of Kubernetes objects for backup and restore."""

from __future__ import annotations

import copy

from vessel.kube.objects import KubeObject

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
# Restore order: what others refer to comes first; workloads start only after their data;
# custom resources last, once their definitions exist and the workloads serving them run.
ORDER = [
    "Namespace",
    "CustomResourceDefinition",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "ClusterRole",
    "Role",
    "ClusterRoleBinding",
    "RoleBinding",
    "PersistentVolumeClaim",
    "Service",
]
WORKLOADS = ["Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"]
OTHER_RANK = len(ORDER)
CUSTOM_RANK = OTHER_RANK + 1 + len(WORKLOADS)


def sanitize(obj: KubeObject) -> KubeObject:
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


def remap_namespace(obj: KubeObject, mapping: dict[str, str]) -> KubeObject:
    """`obj` moved by `mapping` (source namespace -> target namespace): its own namespace,
    a Namespace's name, and the namespaces that bindings' subjects name."""
    moved = copy.deepcopy(obj)
    meta = moved["metadata"]
    if meta.get("namespace"):
        meta["namespace"] = mapping.get(meta["namespace"], meta["namespace"])
    if moved.get("kind") == "Namespace" and meta.get("name"):
        meta["name"] = mapping.get(meta["name"], meta["name"])
    if moved.get("kind") in ("RoleBinding", "ClusterRoleBinding"):
        for subject in moved.get("subjects") or []:
            if isinstance(subject, dict) and subject.get("namespace"):
                subject["namespace"] = mapping.get(subject["namespace"], subject["namespace"])
    return moved


def api_group(obj: KubeObject) -> str:
    api_version = str(obj.get("apiVersion", ""))
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def custom_kinds(objects: list[KubeObject]) -> frozenset[tuple[str, str]]:
    """(group, kind) of every kind a CustomResourceDefinition among `objects` defines."""
    found = set()
    for obj in objects:
        if obj.get("kind") == "CustomResourceDefinition":
            spec = obj.get("spec") or {}
            group, kind = spec.get("group"), (spec.get("names") or {}).get("kind")
            if group and kind:
                found.add((str(group), str(kind)))
    return frozenset(found)


def restore_rank(obj: KubeObject, custom: frozenset[tuple[str, str]] = frozenset()) -> int:
    """Position of `obj`'s kind in the restore order; `custom` from `custom_kinds`."""
    kind = obj.get("kind", "")
    if (api_group(obj), kind) in custom:
        return CUSTOM_RANK
    if kind in ORDER:
        return ORDER.index(kind)
    if kind in WORKLOADS:
        return OTHER_RANK + 1 + WORKLOADS.index(kind)
    return OTHER_RANK


def is_workload(obj: KubeObject) -> bool:
    return obj.get("kind") in WORKLOADS
