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
from vessel.kube import selectors
from vessel.kube.objects import KubeObject, name_of
from vessel.kube.port import KubeApi

Container = dict[str, Any]
"""A container of a pod's `spec.containers`."""


async def app_pods(kube: KubeApi, app: AppRecord) -> list[KubeObject]:
    """Running pods of the app, by namespace and name."""
    selectors: list[tuple[str, str]] = []
    namespaces = app.namespaces or [app.namespace]
    if app.grouping == "label" and app.selector:
        selectors += [(ns, _match_labels(app.selector)) for ns in namespaces]
    pods: dict[tuple[str, str], KubeObject] = {}
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
            pods[(namespace, name_of(pod))] = pod
    return [
        pod
        for _, pod in sorted(pods.items())
        if (pod.get("status") or {}).get("phase") == "Running"
        and not pod["metadata"].get("deletionTimestamp")
    ]


def matching_containers(hook: ExecHook, pod: KubeObject) -> list[Container]:
    containers = (pod.get("spec") or {}).get("containers") or []
    return [
        c
        for c in containers
        if (not hook.container_name or re.search(hook.container_name, c.get("name", "")))
        and (not hook.container_image or re.search(hook.container_image, c.get("image", "")))
    ]


def claim_mounts(app: AppRecord, pod: KubeObject, container: Container) -> list[str]:
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
    """A LabelSelector as a query string; empty (selects nothing here) when it has no terms
    or does not parse (the API server admits no workload with such a selector)."""
    if not isinstance(selector, dict):
        return ""
    try:
        return ",".join(str(r) for r in selectors.from_label_selector(selector))
    except selectors.SelectorError:
        return ""
