"""Grouping rules beyond labels: Helm releases, owners and selectors, user-defined apps,
state reasons, dependencies (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services.discovery.grouping import group_apps
from tests.discovery import objects as o
from vessel.contracts.commands import DefineApp
from vessel.contracts.events import AppRecord
from vessel.contracts.models import NamespaceSelection

C = "eu-1"
HELM = o.helm_annotations("shop", "prod")


def created(obj: dict[str, Any], ago: timedelta) -> dict[str, Any]:
    stamp = (datetime.now(UTC) - ago).strftime("%Y-%m-%dT%H:%M:%SZ")
    obj["metadata"]["creationTimestamp"] = stamp
    return obj


def ready(obj: dict[str, Any], n: int = 1) -> dict[str, Any]:
    obj["status"] = {"readyReplicas": n}
    return obj


def names(app: AppRecord) -> list[str]:
    return [f"{r.kind}/{r.name}" for r in app.resources]


def test_helm_release_beats_labels_and_takes_its_record() -> None:
    objects = [
        ready(o.deployment("web", "prod", {"app": "web"}, annotations=HELM)),
        o.simple("ConfigMap", "web", "prod", {"app": "web"}, HELM),
        o.helm_release("shop", "prod", 1, status="superseded"),
        o.helm_release("shop", "prod", 2, chart="shop", chart_version="9.9.9"),
        ready(o.deployment("api", "prod", {"app": "api"})),
    ]
    apps = group_apps(C, objects)
    assert sorted(apps) == ["eu-1.prod.api", "eu-1.prod.shop"]
    shop = apps["eu-1.prod.shop"]
    assert shop.grouping == "helm" and shop.selector == {}
    assert shop.helm is not None and (shop.helm.revision, shop.helm.chart_version) == (2, "9.9.9")
    assert names(shop) == [
        "ConfigMap/web",
        "Deployment/web",
        "Secret/sh.helm.release.v1.shop.v1",
        "Secret/sh.helm.release.v1.shop.v2",
    ]


def test_a_failed_release_fails_its_app() -> None:
    objects = [
        ready(o.deployment("web", "prod", {}, annotations=HELM)),
        o.helm_release("shop", "prod", 4, status="failed"),
    ]
    app = group_apps(C, objects)["eu-1.prod.shop"]
    assert (app.state, app.reasons) == ("Failed", ["Helm release shop revision 4 failed"])


def test_pods_follow_their_owner_or_the_workload_selecting_them() -> None:
    crash = o.crash_status("main")
    by_rs = o.pod("web-7c9f-abcde", "prod", {"unrelated": "x"}, ("ReplicaSet", "web-7c9f"))
    by_rs["status"] = crash
    by_selector = o.pod("loose", "prod", {"app.kubernetes.io/component": "web"})
    objects = [ready(o.deployment("web", "prod", {"app": "web"})), by_rs, by_selector]
    app = group_apps(C, objects)["eu-1.prod.web"]
    assert app.state == "Failed"
    assert app.reasons == ["Pod web-7c9f-abcde: container main in CrashLoopBackOff"]
    assert names(app) == ["Deployment/web"]  # pods are the state, not resources


def test_a_cronjobs_jobs_and_a_jobs_pods_belong_to_it() -> None:
    failed = o.job("report-1", "prod", {}, owner="report")
    failed["status"] = {"conditions": [{"type": "Failed", "status": "True"}]}
    objects = [o.cronjob("report", "prod", {"app.kubernetes.io/name": "report"}), failed]
    app = group_apps(C, objects)["eu-1.prod.report"]
    assert app.reasons == ["Job report-1 failed"] and names(app) == ["CronJob/report"]


def test_the_name_label_is_used_between_instance_and_app() -> None:
    labels = {"app": "x", "app.kubernetes.io/name": "nginx"}
    app = next(iter(group_apps(C, [ready(o.deployment("web", "prod", labels))]).values()))
    assert (app.name, app.selector) == ("nginx", {"app.kubernetes.io/name": "nginx"})


def test_a_claim_pending_too_long_fails_its_app_later() -> None:
    young = created(o.pvc("young", "prod", {"app": "web"}), timedelta(seconds=10))
    app = group_apps(C, [ready(o.deployment("web", "prod", {"app": "web"})), young])
    assert app["eu-1.prod.web"].state == "Available"
    old = created(o.pvc("old", "prod", {"app": "web"}), timedelta(minutes=6))
    app = group_apps(C, [ready(o.deployment("web", "prod", {"app": "web"})), old])
    assert app["eu-1.prod.web"].reasons == ["PersistentVolumeClaim old Pending for over 300s"]


def test_claims_show_their_pv_class_and_vessel_volume() -> None:
    objects = [
        ready(o.deployment("db", "prod", {"app": "db"}, claims=("data",))),
        o.pvc("data", "prod", volume="pv-1", storage_class="gold"),
        o.pv("pv-1", "prod", "data", storage_class="gold", vessel_volume="vol-9"),
        o.storage_class("gold"),
    ]
    app = group_apps(C, objects)["eu-1.prod.db"]
    [claim] = app.claims
    assert (claim.volume_name, claim.backend_volume, claim.storage_class) == (
        "pv-1",
        "vol-9",
        "gold",
    )
    assert [(d.kind, d.name) for d in app.dependencies] == [
        ("PersistentVolume", "pv-1"),
        ("StorageClass", "gold"),
    ]


def test_user_defined_apps_take_their_objects_first() -> None:
    definition = DefineApp(
        operation_id="op",
        cluster=C,
        namespace="prod",
        name="billing",
        include=[
            NamespaceSelection(namespace="prod", match_labels={"team": "billing"}),
            NamespaceSelection(namespace="jobs"),
        ],
    )
    objects = [
        ready(o.deployment("web", "prod", {"team": "billing"}, annotations=HELM)),
        ready(o.deployment("api", "prod", {"app": "api"})),
        o.cronjob("nightly", "jobs", {"app": "nightly"}),
    ]
    apps = group_apps(C, objects, definitions=[definition])
    assert sorted(apps) == ["eu-1.prod.api", "eu-1.prod.billing"]
    billing = apps["eu-1.prod.billing"]
    assert billing.grouping == "user" and billing.namespaces == ["jobs", "prod"]
    assert [(r.namespace, r.name) for r in billing.resources] == [
        ("jobs", "nightly"),
        ("prod", "web"),
    ]


def test_a_name_the_contract_cannot_hold_is_left_out_not_fatal() -> None:
    objects = [
        ready(o.deployment("web", "prod", {"app": "web"})),
        o.simple("Role", "system:web", "prod", {"app": "web"}),
    ]
    assert names(group_apps(C, objects)["eu-1.prod.web"]) == ["Deployment/web"]


def test_secret_data_never_reaches_a_record() -> None:
    objects = [
        ready(o.deployment("web", "prod", {"app": "web"})),
        o.secret("creds", "prod", {"password": "hunter2"}, {"app": "web"}),
    ]
    app = group_apps(C, objects)["eu-1.prod.web"]
    assert "hunter2" not in app.model_dump_json() and "aHVudGVyMg" not in app.model_dump_json()


def test_a_release_annotation_that_is_no_app_name_is_ignored() -> None:
    odd = {"meta.helm.sh/release-name": "not a name!"}
    deployment = ready(o.deployment("web", "prod", {"app": "web"}, annotations=odd))
    assert list(group_apps(C, [deployment])) == ["eu-1.prod.web"]
