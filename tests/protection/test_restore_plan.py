"""The restore plan's rules, one by one: filters, mappings, transforms, order."""

from __future__ import annotations

from typing import Any

import pytest

from services.protection.resources import restore_rank
from services.protection.restore_plan import TransformError, build_plan, matches
from vessel.contracts.protection import ResourceFilter, RestoreOptions, Transform
from vessel.kube.objects import KubeObject


def obj(kind: str, name: str, ns: str | None = "shop", api: str = "v1", **extra: Any) -> KubeObject:
    meta: dict[str, Any] = {"name": name, **extra.pop("meta", {})}
    if ns:
        meta["namespace"] = ns
    return {"apiVersion": api, "kind": kind, "metadata": meta, **extra}


def claim(name: str, ns: str = "shop", storage_class: str | None = "fast") -> KubeObject:
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}},
    }
    if storage_class:
        spec["storageClassName"] = storage_class
    return obj("PersistentVolumeClaim", name, ns, spec=spec)


BACKUP = [
    obj("Deployment", "web", api="apps/v1", meta={"labels": {"tier": "front"}}),
    obj("ConfigMap", "settings", meta={"labels": {"tier": "front"}}),
    obj("Secret", "token"),
    claim("data"),
    obj("Service", "web"),
    obj(
        "RoleBinding",
        "readers",
        api="rbac.authorization.k8s.io/v1",
        subjects=[
            {"kind": "ServiceAccount", "name": "app", "namespace": "shop"},
            {"kind": "ServiceAccount", "name": "ops", "namespace": "elsewhere"},
        ],
    ),
    obj("ServiceAccount", "app"),
]


def names(plan_objects: list[KubeObject]) -> list[str]:
    return [f"{o['kind']}/{o['metadata']['name']}" for o in plan_objects]


def test_everything_is_planned_by_default_in_dependency_order() -> None:
    plan = build_plan(BACKUP, {}, RestoreOptions())
    assert names(plan.objects) == [
        "Namespace/shop",
        "ServiceAccount/app",
        "Secret/token",
        "ConfigMap/settings",
        "RoleBinding/readers",
        "PersistentVolumeClaim/data",
        "Service/web",
        "Deployment/web",
    ]
    assert names(plan.last) == ["Deployment/web"]
    assert ("shop", "data") in plan.claims


def test_crds_come_early_and_their_custom_resources_last() -> None:
    crd = obj(
        "CustomResourceDefinition",
        "widgets.example.com",
        ns=None,
        api="apiextensions.k8s.io/v1",
        spec={"group": "example.com", "names": {"kind": "Widget"}},
    )
    widget = obj("Widget", "w1", api="example.com/v1")
    ingress = obj("Ingress", "in", api="networking.k8s.io/v1")
    job = obj("CronJob", "nightly", api="batch/v1")
    plan = build_plan([widget, job, ingress, *BACKUP, crd], {}, RestoreOptions())
    order = names(plan.objects)
    assert order[:2] == ["Namespace/shop", "CustomResourceDefinition/widgets.example.com"]
    assert order[-1] == "Widget/w1"
    assert (
        order.index("Ingress/in") < order.index("Deployment/web") < order.index("CronJob/nightly")
    )
    assert plan.after_data(widget) and not plan.after_data(ingress)
    # The same kind without its definition in the backup is an ordinary object.
    assert restore_rank(widget) == restore_rank(ingress)


def test_namespace_mapping_moves_objects_namespaces_and_binding_subjects() -> None:
    plan = build_plan(BACKUP, {"shop": "shop-copy"}, RestoreOptions())
    assert {o["metadata"].get("namespace") for o in plan.objects} == {None, "shop-copy"}
    assert names(plan.objects)[0] == "Namespace/shop-copy"
    binding = next(o for o in plan.objects if o["kind"] == "RoleBinding")
    assert [s["namespace"] for s in binding["subjects"]] == ["shop-copy", "elsewhere"]
    assert plan.claims[("shop", "data")].namespace == "shop-copy"
    assert BACKUP[5]["subjects"][0]["namespace"] == "shop"  # the input is not changed


def test_a_backed_up_namespace_object_is_renamed_not_duplicated() -> None:
    ns = obj("Namespace", "shop", ns=None, meta={"labels": {"team": "a"}})
    plan = build_plan([ns, *BACKUP], {"shop": "moved"}, RestoreOptions())
    spaces = [o for o in plan.objects if o["kind"] == "Namespace"]
    assert spaces == [obj("Namespace", "moved", ns=None, meta={"labels": {"team": "a"}})]


def test_include_by_kind_then_exclude_by_name() -> None:
    options = RestoreOptions(
        include=[ResourceFilter(kinds=["ConfigMap", "Secret", "Deployment"])],
        exclude=[ResourceFilter(names=["token"])],
    )
    plan = build_plan(BACKUP, {}, options)
    assert names(plan.objects) == ["Namespace/shop", "ConfigMap/settings", "Deployment/web"]
    assert plan.claims == {}  # the claim is filtered out: its volume is not restored


def test_include_matches_any_filter_and_labels_must_all_match() -> None:
    options = RestoreOptions(
        include=[
            ResourceFilter(labels={"tier": "front"}, kinds=["ConfigMap"]),
            ResourceFilter(names=["data"]),
        ]
    )
    assert names(build_plan(BACKUP, {}, options).objects) == [
        "Namespace/shop",
        "ConfigMap/settings",
        "PersistentVolumeClaim/data",
    ]
    only_front = RestoreOptions(exclude=[ResourceFilter(labels={"tier": "front", "x": "y"})])
    assert len(build_plan(BACKUP, {}, only_front).objects) == len(BACKUP) + 1


def test_filters_name_source_namespaces() -> None:
    other = obj("ConfigMap", "c", ns="other")
    plan = build_plan(
        [other, *BACKUP],
        {"shop": "s2"},
        RestoreOptions(exclude=[ResourceFilter(namespaces=["shop"])]),
    )
    assert names(plan.objects) == ["Namespace/other", "ConfigMap/c"]
    namespace = obj("Namespace", "shop", ns=None)
    assert matches(ResourceFilter(namespaces=["shop"]), namespace)
    assert not matches(ResourceFilter(namespaces=["s2"]), BACKUP[0])


def test_storage_class_mapping_rewrites_claims_only() -> None:
    options = RestoreOptions(storage_class_mapping={"fast": "gold"})
    plan = build_plan([*BACKUP, claim("plain", storage_class=None)], {}, options)
    pvc = next(o for o in plan.objects if o["metadata"]["name"] == "data")
    assert pvc["spec"]["storageClassName"] == "gold"
    assert plan.claims[("shop", "data")].storage_class == "gold"
    assert plan.claims[("shop", "plain")].storage_class is None
    assert BACKUP[3]["spec"]["storageClassName"] == "fast"


def test_transforms_patch_selected_objects_after_mapping() -> None:
    options = RestoreOptions(
        transforms=[
            Transform(
                match=ResourceFilter(kinds=["Deployment"]),
                patch=[
                    {"op": "add", "path": "/spec", "value": {"replicas": 0}},
                    {"op": "test", "path": "/metadata/namespace", "value": "copy"},
                ],
            ),
            Transform(
                match=ResourceFilter(labels={"tier": "front"}),
                patch=[{"op": "add", "path": "/metadata/labels/restored", "value": "yes"}],
            ),
        ]
    )
    plan = build_plan(BACKUP, {"shop": "copy"}, options)
    web = next(o for o in plan.objects if o["kind"] == "Deployment")
    assert web["spec"] == {"replicas": 0}
    assert web["metadata"]["labels"] == {"tier": "front", "restored": "yes"}
    config = next(o for o in plan.objects if o["kind"] == "ConfigMap")
    assert config["metadata"]["labels"]["restored"] == "yes"
    token = next(o for o in plan.objects if o["kind"] == "Secret")
    assert "labels" not in token["metadata"]


def test_a_transform_that_does_not_apply_names_object_and_op() -> None:
    options = RestoreOptions(
        transforms=[
            Transform(patch=[{"op": "add", "path": "/metadata/labels/x", "value": "1"}]),
            Transform(
                match=ResourceFilter(kinds=["Service"]),
                patch=[{"op": "replace", "path": "/spec/ports/0/port", "value": 81}],
            ),
        ]
    )
    with pytest.raises(TransformError) as caught:
        build_plan(BACKUP, {}, options)
    failures = dict(caught.value.failures)
    assert set(failures) == {0, 1}
    assert "op add /metadata/labels/x" in failures[0]
    assert "op replace /spec/ports/0/port" in failures[1] and "Service shop/web" in failures[1]


def test_a_patch_that_removes_the_name_is_refused() -> None:
    options = RestoreOptions(
        transforms=[
            Transform(
                match=ResourceFilter(names=["token"]),
                patch=[{"op": "remove", "path": "/metadata/name"}],
            )
        ]
    )
    with pytest.raises(TransformError, match=r"without kind or metadata\.name"):
        build_plan(BACKUP, {}, options)
