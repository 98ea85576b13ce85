"""The kinds discovery watches, and the slim copies of their objects it keeps.

Objects are slimmed as they arrive, before any cache holds them: only what grouping, state
and diffs read is kept. Secrets keep metadata and type only (never data); a Helm release
Secret also keeps the decoded summary of its release (never the manifest or values).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from services.discovery import helm
from vessel.kube.objects import KubeObject

log = logging.getLogger("vessel.discovery")


@dataclass(frozen=True)
class WatchedKind:
    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def resource(self) -> str:
        """`plural.group`, as RBAC and error messages name it."""
        group = self.api_version.rpartition("/")[0]
        return f"{self.plural}.{group}" if group else self.plural


WATCHED: tuple[WatchedKind, ...] = (
    WatchedKind("v1", "Namespace", "namespaces", namespaced=False),
    WatchedKind("apps/v1", "Deployment", "deployments"),
    WatchedKind("apps/v1", "StatefulSet", "statefulsets"),
    WatchedKind("apps/v1", "DaemonSet", "daemonsets"),
    WatchedKind("batch/v1", "CronJob", "cronjobs"),
    WatchedKind("batch/v1", "Job", "jobs"),
    WatchedKind("v1", "Pod", "pods"),
    WatchedKind("v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
    WatchedKind("v1", "PersistentVolume", "persistentvolumes", namespaced=False),
    WatchedKind("storage.k8s.io/v1", "StorageClass", "storageclasses", namespaced=False),
    WatchedKind("v1", "Service", "services"),
    WatchedKind("v1", "ConfigMap", "configmaps"),
    WatchedKind("v1", "Secret", "secrets"),
    WatchedKind("v1", "ServiceAccount", "serviceaccounts"),
    WatchedKind("rbac.authorization.k8s.io/v1", "Role", "roles"),
    WatchedKind("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
    WatchedKind("networking.k8s.io/v1", "Ingress", "ingresses"),
)
BY_KIND = {k.kind: k for k in WATCHED}
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job"})
CLUSTER_SCOPED = frozenset(k.kind for k in WATCHED if not k.namespaced)
KEPT_ANNOTATIONS = frozenset(
    {
        helm.RELEASE_ANNOTATION,
        helm.RELEASE_NAMESPACE_ANNOTATION,
        "vessel.io/volume-id",
        "pv.kubernetes.io/provisioned-by",
    }
)
_META_FIELDS = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "labels",
)


def _pick(src: Any, *fields: str) -> dict[str, Any]:
    if not isinstance(src, dict):
        return {}
    return {f: src[f] for f in fields if src.get(f) is not None}


def _meta(meta: dict[str, Any]) -> dict[str, Any]:
    out = _pick(meta, *_META_FIELDS)
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k in KEPT_ANNOTATIONS
    }
    if annotations:
        out["annotations"] = annotations
    owners = [
        {"kind": o.get("kind"), "name": o.get("name"), "controller": bool(o.get("controller"))}
        for o in meta.get("ownerReferences") or []
        if isinstance(o, dict)
    ]
    if owners:
        out["ownerReferences"] = owners
    return out


def _pod_spec(spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict):
        return {}
    volumes = [
        {"persistentVolumeClaim": {"claimName": v["persistentVolumeClaim"].get("claimName")}}
        for v in spec.get("volumes") or []
        if isinstance(v, dict) and isinstance(v.get("persistentVolumeClaim"), dict)
    ]
    containers = [{"image": c.get("image")} for c in spec.get("containers") or []]
    return {"volumes": volumes, "containers": containers}


def _template(template: Any) -> dict[str, Any]:
    if not isinstance(template, dict):
        return {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    return {"metadata": {"labels": labels}, "spec": _pod_spec(template.get("spec"))}


def _container_states(statuses: Any) -> list[dict[str, Any]]:
    out = []
    for s in statuses or []:
        waiting = ((s.get("state") or {}).get("waiting") or {}).get("reason")
        out.append({"name": s.get("name"), "ready": bool(s.get("ready")), "waiting": waiting})
    return out


def _spec_status(kind: str, obj: KubeObject) -> dict[str, Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if kind in ("Deployment", "StatefulSet", "DaemonSet"):
        kept = _pick(spec, "replicas", "selector")
        kept["template"] = _template(spec.get("template"))
        kept["volumeClaimTemplates"] = [
            {"metadata": {"name": (t.get("metadata") or {}).get("name")}}
            for t in spec.get("volumeClaimTemplates") or []
        ]
        ready = ("replicas", "readyReplicas", "desiredNumberScheduled", "numberReady")
        return {"spec": kept, "status": _pick(status, *ready)}
    if kind == "Job":
        conditions = [_pick(c, "type", "status") for c in status.get("conditions") or []]
        return {
            "spec": {"template": _template(spec.get("template"))},
            "status": {**_pick(status, "active", "succeeded", "failed"), "conditions": conditions},
        }
    if kind == "CronJob":
        template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")
        return {"spec": {"jobTemplate": {"spec": {"template": _template(template)}}}}
    if kind == "Pod":
        return {
            "spec": _pod_spec(spec),
            "status": {
                **_pick(status, "phase"),
                "containerStatuses": _container_states(status.get("containerStatuses")),
                "initContainerStatuses": _container_states(status.get("initContainerStatuses")),
            },
        }
    if kind == "PersistentVolumeClaim":
        requests = _pick((spec.get("resources") or {}).get("requests"), "storage")
        return {
            "spec": {
                **_pick(spec, "storageClassName", "volumeName"),
                "resources": {"requests": requests},
            },
            "status": _pick(status, "phase"),
        }
    if kind == "PersistentVolume":
        kept = _pick(spec, "storageClassName")
        if isinstance(spec.get("claimRef"), dict):
            kept["claimRef"] = _pick(spec["claimRef"], "namespace", "name")
        return {"spec": kept, "status": _pick(status, "phase")}
    if kind == "Namespace":
        return {"status": _pick(status, "phase")}
    if kind == "Service":
        return {"spec": _pick(spec, "selector", "type")}
    return {}


def slim(watched: WatchedKind, obj: KubeObject) -> KubeObject:
    """The copy discovery keeps of `obj`; never any Secret data."""
    out: KubeObject = {
        "apiVersion": watched.api_version,
        "kind": watched.kind,
        "metadata": _meta(obj.get("metadata") or {}),
    }
    if watched.kind == "StorageClass":
        out["provisioner"] = obj.get("provisioner")
    elif watched.kind == "Secret":
        out["type"] = obj.get("type")
        if helm.is_release_secret(out):
            out[helm.SUMMARY_KEY] = _release(obj)
    else:
        out.update(_spec_status(watched.kind, obj))
    return out


def _release(secret: KubeObject) -> Any:
    try:
        return helm.summarize(secret)
    except helm.ReleaseError as exc:
        meta = secret.get("metadata") or {}
        log.warning("Helm release Secret %s/%s: %s", meta.get("namespace"), meta.get("name"), exc)
        return helm.fallback(secret)
