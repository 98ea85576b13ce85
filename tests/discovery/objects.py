"""Builders of Kubernetes objects for discovery tests (and the benchmark)."""

from __future__ import annotations

import base64
from typing import Any

from services.discovery.helm import encode_release
from vessel.kube.objects import KubeObject


def _meta(
    name: str,
    ns: str | None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if ns is not None:
        meta["namespace"] = ns
    if labels:
        meta["labels"] = dict(labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def helm_annotations(release: str, ns: str) -> dict[str, str]:
    return {"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": ns}


def namespace(name: str, labels: dict[str, str] | None = None) -> KubeObject:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(name, None, labels)}


def pod_template(
    labels: dict[str, str], image: str = "nginx:1.25", claims: tuple[str, ...] = ()
) -> KubeObject:
    volumes = [{"name": c, "persistentVolumeClaim": {"claimName": c}} for c in claims]
    return {
        "metadata": {"labels": dict(labels)},
        "spec": {"containers": [{"name": "main", "image": image}], "volumes": volumes},
    }


def deployment(
    name: str,
    ns: str,
    labels: dict[str, str] | None = None,
    *,
    replicas: int = 1,
    image: str = "nginx:1.25",
    claims: tuple[str, ...] = (),
    annotations: dict[str, str] | None = None,
) -> KubeObject:
    selector = {"app.kubernetes.io/component": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, ns, labels, annotations),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": pod_template({**(labels or {}), **selector}, image, claims),
        },
    }


def statefulset(name: str, ns: str, labels: dict[str, str], *, claim_template: str) -> KubeObject:
    selector = {"app.kubernetes.io/component": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _meta(name, ns, labels),
        "spec": {
            "replicas": 1,
            "serviceName": name,
            "selector": {"matchLabels": selector},
            "template": pod_template({**labels, **selector}),
            "volumeClaimTemplates": [{"metadata": {"name": claim_template}}],
        },
    }


def daemonset(name: str, ns: str, labels: dict[str, str]) -> KubeObject:
    selector = {"app.kubernetes.io/component": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": _meta(name, ns, labels),
        "spec": {"selector": {"matchLabels": selector}, "template": pod_template(selector)},
    }


def cronjob(name: str, ns: str, labels: dict[str, str]) -> KubeObject:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": _meta(name, ns, labels),
        "spec": {
            "schedule": "0 * * * *",
            "jobTemplate": {"spec": {"template": pod_template(labels)}},
        },
    }


def job(name: str, ns: str, labels: dict[str, str], owner: str | None = None) -> KubeObject:
    obj: KubeObject = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(name, ns, labels),
        "spec": {"template": pod_template(labels)},
    }
    if owner:
        obj["metadata"]["ownerReferences"] = [
            {"apiVersion": "batch/v1", "kind": "CronJob", "name": owner, "uid": "u"}
            | {"controller": True}
        ]
    return obj


def pod(
    name: str, ns: str, labels: dict[str, str], owner: tuple[str, str] | None = None
) -> KubeObject:
    obj: KubeObject = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _meta(name, ns, labels),
        "spec": {"containers": [{"name": "main", "image": "nginx:1.25"}]},
    }
    if owner is not None:
        obj["metadata"]["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1], "uid": "u"}
            | {"controller": True}
        ]
    return obj


def crash_status(container: str = "main") -> dict[str, Any]:
    waiting = {"reason": "CrashLoopBackOff", "message": "back-off restarting"}
    return {
        "phase": "Running",
        "containerStatuses": [
            {"name": container, "ready": False, "restartCount": 5, "state": {"waiting": waiting}}
        ],
    }


def pvc(
    name: str,
    ns: str,
    labels: dict[str, str] | None = None,
    *,
    size: str = "1Gi",
    storage_class: str = "fast",
    volume: str | None = None,
    annotations: dict[str, str] | None = None,
) -> KubeObject:
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": storage_class,
        "resources": {"requests": {"storage": size}},
    }
    if volume:
        spec["volumeName"] = volume
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(name, ns, labels, annotations),
        "spec": spec,
    }


def pv(
    name: str,
    claim_ns: str,
    claim: str,
    *,
    size: str = "1Gi",
    storage_class: str = "fast",
    vessel_volume: str | None = None,
) -> KubeObject:
    annotations = (
        {
            "pv.kubernetes.io/provisioned-by": "vessel.io/provisioner",
            "vessel.io/volume-id": vessel_volume,
        }
        if vessel_volume
        else None
    )
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": _meta(name, None, None, annotations),
        "spec": {
            "capacity": {"storage": size},
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": storage_class,
            "persistentVolumeReclaimPolicy": "Retain",
            "hostPath": {"path": f"/tmp/{name}"},
            "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim"}
            | {"namespace": claim_ns, "name": claim},
        },
    }


def storage_class(name: str = "fast") -> KubeObject:
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name},
        "provisioner": "example.com/none",
        "volumeBindingMode": "Immediate",
    }


def simple(
    kind: str,
    name: str,
    ns: str,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> KubeObject:
    api = {
        "Role": "rbac.authorization.k8s.io/v1",
        "RoleBinding": "rbac.authorization.k8s.io/v1",
        "Ingress": "networking.k8s.io/v1",
    }.get(kind, "v1")
    obj: KubeObject = {
        "apiVersion": api,
        "kind": kind,
        "metadata": _meta(name, ns, labels, annotations),
    }
    if kind == "Service":
        obj["spec"] = {"selector": dict(labels or {}), "ports": [{"port": 80}]}
    if kind == "ConfigMap":
        obj["data"] = {"setting": "on"}
    if kind == "Role":
        obj["rules"] = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
    if kind == "RoleBinding":
        obj["roleRef"] = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}
        obj["subjects"] = [{"kind": "ServiceAccount", "name": "default", "namespace": ns}]
    if kind == "Ingress":
        backend = {"service": {"name": name, "port": {"number": 80}}}
        obj["spec"] = {"defaultBackend": backend}
    return obj


def secret(
    name: str,
    ns: str,
    data: dict[str, str],
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> KubeObject:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(name, ns, labels, annotations),
        "type": "Opaque",
        "data": encoded,
    }


def helm_release(
    release: str,
    ns: str,
    version: int,
    *,
    chart: str = "web",
    chart_version: str = "1.2.3",
    status: str = "deployed",
    values: dict[str, Any] | None = None,
) -> KubeObject:
    """A release record as Helm 3 writes it (the manifest and values included)."""
    doc = {
        "name": release,
        "namespace": ns,
        "version": version,
        "info": {"status": status, "description": "Install complete"},
        "chart": {"metadata": {"name": chart, "version": chart_version, "appVersion": "2.0"}},
        "config": values or {},
        "manifest": "---\nkind: Secret\ndata:\n  password: aHVudGVyMg==\n",
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": f"sh.helm.release.v1.{release}.v{version}",
            "namespace": ns,
            "labels": {"name": release, "owner": "helm", "status": status, "version": str(version)},
        },
        "type": "helm.sh/release.v1",
        "data": {"release": encode_release(doc)},
    }
