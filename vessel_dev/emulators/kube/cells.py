"""Cell values of the real server's table printers, computed as it computes them.

kube-apiserver's internal printers (``pkg/printers/internalversion``) and the snapshot
CRDs' printer columns, with ``Wide`` on; times are ages relative to now, as strings.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from vessel.kube.objects import KubeObject
from vessel_cli.humanize import age as human_duration

_ACCESS_MODES = (
    ("ReadWriteOnce", "RWO"),
    ("ReadOnlyMany", "ROX"),
    ("ReadWriteMany", "RWX"),
    ("ReadWriteOncePod", "RWOP"),
)


def since(timestamp: Any) -> str:
    """``translateTimestampSince``: the age of an RFC 3339 time, ``<unknown>`` if unset."""
    if not isinstance(timestamp, str) or not timestamp:
        return "<unknown>"
    try:
        then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "<unknown>"
    return human_duration((datetime.now(UTC) - then).total_seconds())


def _meta(obj: KubeObject) -> KubeObject:
    value = obj.get("metadata")
    return value if isinstance(value, dict) else {}


def _get(obj: Any, *path: str) -> Any:
    for part in path:
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def name(obj: KubeObject) -> str:
    return str(_meta(obj).get("name", ""))


def age(obj: KubeObject) -> str:
    return since(_meta(obj).get("creationTimestamp"))


def phase(obj: KubeObject) -> str:
    if _meta(obj).get("deletionTimestamp"):
        return "Terminating"
    return str(_get(obj, "status", "phase") or "")


def _modes(modes: Any) -> str:
    present = set(modes or [])
    return ",".join(short for mode, short in _ACCESS_MODES if mode in present)


def _or_none(value: Any) -> str:
    return str(value) if value not in (None, "") else "<none>"


def claim(obj: KubeObject) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    bound = bool(spec.get("volumeName"))
    return [
        phase(obj),
        spec.get("volumeName", ""),
        (status.get("capacity") or {}).get("storage", "") if bound else "",
        _modes(status.get("accessModes")) if bound else "",
        spec.get("storageClassName", "<unset>"),
        spec.get("volumeAttributesClassName", "<unset>"),
        age(obj),
        spec.get("volumeMode", "<unset>"),
    ]


def volume(obj: KubeObject) -> list[Any]:
    spec, ref = obj.get("spec") or {}, _get(obj, "spec", "claimRef") or {}
    return [
        (spec.get("capacity") or {}).get("storage", ""),
        _modes(spec.get("accessModes")),
        spec.get("persistentVolumeReclaimPolicy", ""),
        phase(obj),
        f"{ref.get('namespace', '')}/{ref.get('name', '')}" if ref else "",
        spec.get("storageClassName", ""),
        spec.get("volumeAttributesClassName", "<unset>"),
        _get(obj, "status", "reason") or "",
        age(obj),
        spec.get("volumeMode", "<unset>"),
    ]


def pod(obj: KubeObject) -> list[Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    statuses = status.get("containerStatuses") or []
    reason = status.get("reason") or status.get("phase") or ""
    if _meta(obj).get("deletionTimestamp"):
        reason = "Terminating"
    return [
        f"{sum(1 for s in statuses if s.get('ready'))}/{len(spec.get('containers') or [])}",
        reason,
        sum(int(s.get("restartCount") or 0) for s in statuses),
        age(obj),
        _or_none(status.get("podIP")),
        _or_none(spec.get("nodeName")),
        _or_none(status.get("nominatedNodeName")),
        "<none>",
    ]


def _selector(obj: KubeObject) -> str:
    labels = _get(obj, "spec", "selector", "matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>"


def _containers(obj: KubeObject) -> list[KubeObject]:
    return list(_get(obj, "spec", "template", "spec", "containers") or [])


def deployment(obj: KubeObject) -> list[Any]:
    status, replicas = obj.get("status") or {}, _get(obj, "spec", "replicas")
    return [
        f"{status.get('readyReplicas', 0)}/{1 if replicas is None else replicas}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
        age(obj),
        ",".join(c.get("name", "") for c in _containers(obj)),
        ",".join(c.get("image", "") for c in _containers(obj)),
        _selector(obj),
    ]


def statefulset(obj: KubeObject) -> list[Any]:
    status, replicas = obj.get("status") or {}, _get(obj, "spec", "replicas")
    ready = f"{status.get('readyReplicas', 0)}/{1 if replicas is None else replicas}"
    containers = _containers(obj)
    names = ",".join(c.get("name", "") for c in containers)
    return [ready, age(obj), names, ",".join(c.get("image", "") for c in containers)]


def storage_class(obj: KubeObject) -> list[Any]:
    annotations = _meta(obj).get("annotations") or {}
    default = annotations.get("storageclass.kubernetes.io/is-default-class") == "true"
    return [
        f"{name(obj)} (default)" if default else name(obj),
        obj.get("provisioner", ""),
        obj.get("reclaimPolicy", "Delete"),
        obj.get("volumeBindingMode", "Immediate"),
        bool(obj.get("allowVolumeExpansion", False)),
        age(obj),
    ]


def event(obj: KubeObject) -> list[Any]:
    involved = obj.get("involvedObject") or {}
    first = since(obj.get("firstTimestamp") or obj.get("eventTime"))
    last = since(obj.get("lastTimestamp")) if obj.get("lastTimestamp") else first
    kind = str(involved.get("kind", "")).lower()
    source = obj.get("source") or {}
    origin = ", ".join(v for v in (source.get("component"), source.get("host")) if v)
    return [
        last,
        obj.get("type", ""),
        obj.get("reason", ""),
        f"{kind}/{involved['name']}" if involved.get("name") else kind,
        involved.get("fieldPath", ""),
        origin or obj.get("reportingComponent", ""),
        str(obj.get("message", "")).strip(),
        first,
        obj.get("count") or 1,
        _meta(obj).get("name", ""),
    ]


def snapshot(obj: KubeObject) -> list[Any]:
    return [
        _get(obj, "status", "readyToUse"),
        _get(obj, "spec", "source", "persistentVolumeClaimName"),
        _get(obj, "spec", "source", "volumeSnapshotContentName"),
        _get(obj, "status", "restoreSize"),
        _get(obj, "spec", "volumeSnapshotClassName"),
        _get(obj, "status", "boundVolumeSnapshotContentName"),
        since(_get(obj, "status", "creationTime")) if _get(obj, "status", "creationTime") else None,
        age(obj),
    ]


def snapshot_content(obj: KubeObject) -> list[Any]:
    ref = _get(obj, "spec", "volumeSnapshotRef") or {}
    return [
        _get(obj, "status", "readyToUse"),
        _get(obj, "status", "restoreSize"),
        _get(obj, "spec", "deletionPolicy"),
        _get(obj, "spec", "driver"),
        _get(obj, "spec", "volumeSnapshotClassName"),
        ref.get("name"),
        ref.get("namespace"),
        age(obj),
    ]
