"""Grouping a cluster's objects into applications."""

from __future__ import annotations

from typing import Any

import pytest

from services.discovery.grouping import group_apps
from vessel.contracts.events import AppRecord
from vessel.kube.objects import KubeObject

CLUSTER = "eu-1"


def obj(kind: str, name: str, ns: str = "shop", labels: dict[str, str] | None = None) -> KubeObject:
    api = "apps/v1" if kind in ("Deployment", "StatefulSet", "DaemonSet") else "v1"
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if labels is not None:
        meta["labels"] = labels
    return {"apiVersion": api, "kind": kind, "metadata": meta, "spec": {}}


def deployment(
    name: str,
    ns: str = "shop",
    labels: dict[str, str] | None = None,
    *,
    claims: tuple[str, ...] = (),
) -> KubeObject:
    d = obj("Deployment", name, ns, labels)
    volumes = [{"name": c, "persistentVolumeClaim": {"claimName": c}} for c in claims]
    d["spec"] = {"replicas": 2, "template": {"spec": {"volumes": [{"name": "tmp"}, *volumes]}}}
    d["status"] = {"readyReplicas": 2}
    return d


def pvc(
    name: str, ns: str = "shop", labels: dict[str, str] | None = None, phase: str = "Bound"
) -> KubeObject:
    p = obj("PersistentVolumeClaim", name, ns, labels)
    p["spec"] = {"storageClassName": "fast", "resources": {"requests": {"storage": "1Gi"}}}
    p["status"] = {"phase": phase}
    return p


def single(apps: dict[str, AppRecord]) -> AppRecord:
    assert len(apps) == 1, sorted(apps)
    return next(iter(apps.values()))


def names(app: AppRecord) -> list[tuple[str, str]]:
    return [(r.kind, r.name) for r in app.resources]


def test_app_id_is_cluster_namespace_name() -> None:
    apps = group_apps(CLUSTER, [deployment("web", labels={"app": "web"})])
    app = single(apps)
    assert list(apps) == ["eu-1.shop.web"] == [app.id]
    assert (app.cluster, app.namespace, app.name) == ("eu-1", "shop", "web")
    assert app.grouping == "label"
    assert app.selector == {"app": "web"}
    assert app.state == "Available"


def test_instance_label_beats_app_label() -> None:
    labels = {"app": "nginx", "app.kubernetes.io/instance": "storefront"}
    app = single(group_apps(CLUSTER, [deployment("web", labels=labels)]))
    assert app.name == "storefront"
    assert app.selector == {"app.kubernetes.io/instance": "storefront"}


def test_objects_sharing_a_label_form_one_app() -> None:
    objects = [
        deployment("web", labels={"app": "web"}),
        obj("ConfigMap", "web-config", labels={"app": "web"}),
        pvc("web-data", labels={"app": "web"}),
        deployment("api", labels={"app": "api"}),
    ]
    apps = group_apps(CLUSTER, objects)
    assert sorted(apps) == ["eu-1.shop.api", "eu-1.shop.web"]
    web = apps["eu-1.shop.web"]
    assert names(web) == [
        ("ConfigMap", "web-config"),
        ("Deployment", "web"),
        ("PersistentVolumeClaim", "web-data"),
    ]
    assert [w.name for w in web.workloads] == ["web"]
    assert [(c.name, c.storage_class, c.requested_bytes) for c in web.claims] == [
        ("web-data", "fast", 1 << 30)
    ]


def test_unlabelled_claim_joins_the_app_that_mounts_it() -> None:
    objects = [pvc("orders"), deployment("db", labels={"app": "db"}, claims=("orders",))]
    app = single(group_apps(CLUSTER, objects))
    assert app.id == "eu-1.shop.db"
    assert [c.name for c in app.claims] == ["orders"]


def test_unlabelled_objects_form_the_namespace_app() -> None:
    objects = [deployment("worker"), pvc("scratch"), obj("ConfigMap", "settings")]
    app = single(group_apps(CLUSTER, objects))
    assert app.id == "eu-1.shop.shop"
    assert app.grouping == "namespace"
    assert app.selector == {}
    assert names(app) == [
        ("ConfigMap", "settings"),
        ("Deployment", "worker"),
        ("PersistentVolumeClaim", "scratch"),
    ]


@pytest.mark.parametrize("ns", ["kube-system", "kube-public", "kube-node-lease"])
def test_system_namespaces_are_ignored(ns: str) -> None:
    objects = [deployment("coredns", ns, labels={"app": "dns"}), pvc("etcd", ns)]
    assert group_apps(CLUSTER, objects) == {}


def test_cluster_scoped_objects_are_ignored() -> None:
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "labels": {"app": "x"}}}
    assert group_apps(CLUSTER, [node]) == {}


def test_configuration_alone_is_not_an_application() -> None:
    objects = [
        obj("ConfigMap", "settings", "config-only"),
        obj("ConfigMap", "flags", "config-only", labels={"app": "flags"}),
        obj("Secret", "token", "config-only"),
    ]
    assert group_apps(CLUSTER, objects) == {}


def test_statefulset_claim_templates_join_its_app() -> None:
    sts = obj("StatefulSet", "db", labels={"app.kubernetes.io/instance": "pg"})
    sts["spec"] = {"replicas": 2, "volumeClaimTemplates": [{"metadata": {"name": "data"}}]}
    sts["status"] = {"readyReplicas": 2}
    objects = [sts, pvc("data-db-0"), pvc("data-db-1"), pvc("data-other-0")]
    apps = group_apps(CLUSTER, objects)
    assert sorted(apps) == ["eu-1.shop.pg", "eu-1.shop.shop"]
    assert [c.name for c in apps["eu-1.shop.pg"].claims] == ["data-db-0", "data-db-1"]
    assert [c.name for c in apps["eu-1.shop.shop"].claims] == ["data-other-0"]


def test_too_few_ready_replicas_fail_the_app() -> None:
    web = deployment("web", labels={"app": "web"})
    web["status"] = {"readyReplicas": 1}
    apps = group_apps(CLUSTER, [web, deployment("api", labels={"app": "api"})])
    assert apps["eu-1.shop.web"].state == "Failed"
    assert apps["eu-1.shop.api"].state == "Available"


def test_a_workload_without_status_is_not_ready() -> None:
    web = deployment("web", labels={"app": "web"})
    del web["status"]
    assert single(group_apps(CLUSTER, [web])).state == "Failed"


def test_a_lost_claim_fails_the_app() -> None:
    objects = [
        deployment("web", labels={"app": "web"}),
        pvc("data", labels={"app": "web"}, phase="Lost"),
    ]
    app = single(group_apps(CLUSTER, objects))
    assert app.state == "Failed"
    assert app.claims[0].phase == "Lost"


def test_a_scaled_down_workload_is_available() -> None:
    web = deployment("web", labels={"app": "web"})
    web["spec"]["replicas"] = 0
    web["status"] = {}
    assert single(group_apps(CLUSTER, [web])).state == "Available"


def test_a_fully_ready_daemonset_is_available() -> None:
    ds = obj("DaemonSet", "agent", labels={"app": "agent"})
    ds["spec"] = {"template": {"spec": {}}}
    ds["status"] = {"desiredNumberScheduled": 3, "numberReady": 3, "numberAvailable": 3}
    assert single(group_apps(CLUSTER, [ds])).state == "Available"


def test_a_label_value_that_is_not_a_dns_name_does_not_break_discovery() -> None:
    objects = [
        deployment("web", labels={"app": "Web_Frontend"}),
        deployment("api", labels={"app": "api"}),
    ]
    apps = group_apps(CLUSTER, objects)
    assert "eu-1.shop.api" in apps
    assert len(apps) == 2


def test_a_statefulset_scaled_to_zero_keeps_its_claims() -> None:
    sts = obj("StatefulSet", "db", labels={"app": "pg"})
    sts["spec"] = {"replicas": 0, "volumeClaimTemplates": [{"metadata": {"name": "data"}}]}
    sts["status"] = {}
    app = single(group_apps(CLUSTER, [sts, pvc("data-db-0")]))
    assert app.id == "eu-1.shop.pg"
    assert [c.name for c in app.claims] == ["data-db-0"]
