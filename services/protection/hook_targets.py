"""Where execution hooks run: the app's running pods and the containers a hook matches.

Pods are found through the app's workloads as they are now in the cluster (their
`spec.selector`), not through the inventory, so a pod that replaced another since
discovery last looked is still reached; an app grouped by label also reaches the pods
carrying its label. Only running pods are used: exec into anything else fails.
"""

from __future__ import annotations

import re
from typing import Any

from vessel.contracts.events import AppRecord
from vessel.contracts.hooks import ExecHook
from vessel.kube.client import KubeCluster

Obj = dict[str, Any]


async def app_pods(kube: KubeCluster, app: AppRecord) -> list[Obj]:
    """Running pods of the app, by namespace and name."""
    selectors: list[tuple[str, str]] = []
    namespaces = app.namespaces or [app.namespace]
    if app.grouping == "label" and app.selector:
        selectors += [(ns, _match_labels(app.selector)) for ns in namespaces]
    pods: dict[tuple[str, str], Obj] = {}
    for ref in app.workloads:
        namespace = ref.namespace or app.namespace
        workload = await kube.get(ref.api_version, ref.kind, ref.name, namespace)
        if workload is None:
            continue
        if ref.kind == "Pod":
            pods[(namespace, ref.name)] = workload
            continue
        selector = _label_selector((workload.get("spec") or {}).get("selector"))
        if selector:
            selectors.append((namespace, selector))
    for namespace, selector in dict.fromkeys(selectors):
        found, _ = await kube.list("v1", "Pod", namespace, label_selector=selector)
        for pod in found:
            pods[(namespace, pod["metadata"]["name"])] = pod
    return [
        pod
        for _, pod in sorted(pods.items())
        if (pod.get("status") or {}).get("phase") == "Running"
        and not pod["metadata"].get("deletionTimestamp")
    ]


def matching_containers(hook: ExecHook, pod: Obj) -> list[Obj]:
    containers = (pod.get("spec") or {}).get("containers") or []
    return [
        c
        for c in containers
        if (not hook.container_name or re.search(hook.container_name, c.get("name", "")))
        and (not hook.container_image or re.search(hook.container_image, c.get("image", "")))
    ]


def claim_mounts(app: AppRecord, pod: Obj, container: Obj) -> list[str]:
    """Mount paths in `container` of volumes that are claims of the app."""
    claims = {c.name for c in app.claims}
    volumes = {
        v.get("name")
        for v in (pod.get("spec") or {}).get("volumes") or []
        if (v.get("persistentVolumeClaim") or {}).get("claimName") in claims
    }
    paths = [
        m["mountPath"] for m in container.get("volumeMounts") or [] if m.get("name") in volumes
    ]
    return list(dict.fromkeys(paths))


def _match_labels(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _label_selector(selector: Any) -> str:
    """A LabelSelector as a query string; empty (selects nothing here) when it has no terms."""
    if not isinstance(selector, dict):
        return ""
    terms = (
        [_match_labels(selector.get("matchLabels") or {})] if selector.get("matchLabels") else []
    )
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op in ("In", "NotIn"):
            terms.append(f"{key} {op.lower()} ({','.join(values)})")
        elif op == "Exists":
            terms.append(str(key))
        elif op == "DoesNotExist":
            terms.append(f"!{key}")
    return ",".join(terms)
