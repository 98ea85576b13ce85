"""Inventory of every kind over two emulated clusters: grouping by Helm release, label and
namespace, Helm records, claims with their PVs, state transitions and debounce."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from functools import partial

import pytest

from tests.discovery import objects as o
from tests.discovery.kubeproxy import kubeconfig_text
from tests.discovery.lab import FAST, Cluster, Lab, eventually
from vessel.contracts import subjects
from vessel.contracts.commands import RegisterCluster

pytestmark = pytest.mark.timeout(60)
SECRET_VALUE = "s3cr3t-" + uuid.uuid4().hex


async def shop(c: Cluster) -> None:
    """Helm release `web` (two revisions), label app `api`, and a namespace app `batch`."""
    helm = o.helm_annotations("web", "shop")
    web = {"app.kubernetes.io/instance": "web"}
    await c.create(
        o.storage_class("fast"),
        o.namespace("shop"),
        o.namespace("batch"),
        o.helm_release("web", "shop", 1, status="superseded", chart_version="1.2.2"),
        o.helm_release("web", "shop", 2, values={"password": SECRET_VALUE}),
        o.deployment("web", "shop", web, claims=("web-data",), annotations=helm),
        o.simple("Service", "web", "shop", web, helm),
        o.simple("ConfigMap", "web-config", "shop", web, helm),
        o.secret("web-creds", "shop", {"password": SECRET_VALUE}, web, helm),
        o.simple("ServiceAccount", "web", "shop", web, helm),
        o.simple("Role", "web", "shop", web, helm),
        o.simple("RoleBinding", "web", "shop", web, helm),
        o.simple("Ingress", "web", "shop", web, helm),
        o.pv("pv-web", "shop", "web-data", vessel_volume="vol-123"),
        o.pvc("web-data", "shop", annotations=helm, volume="pv-web"),
        o.pod(
            "web-5d9c-x1",
            "shop",
            {"app.kubernetes.io/component": "web"},
            ("ReplicaSet", "web-5d9c"),
        ),
        o.deployment("api", "shop", {"app.kubernetes.io/name": "api"}),
        o.cronjob("api-cleanup", "shop", {"app.kubernetes.io/name": "api"}),
        o.job("api-cleanup-1", "shop", {}, owner="api-cleanup"),
        o.daemonset("agent", "batch", {}),
        o.statefulset("db", "batch", {}, claim_template="data"),
        o.pvc("data-db-0", "batch"),
    )


async def test_two_clusters_every_kind_and_grouping(lab: Lab) -> None:
    a = await lab.cluster("a")
    b = await lab.cluster("b")
    await shop(a)
    await b.create(
        o.namespace("blog"),
        o.deployment("blog", "blog", {"app": "blog"}, claims=("posts",)),
        o.pvc("posts", "blog", size="5Gi"),
    )
    await lab.discovery([a])  # a from the settings, b by command with inline text
    await lab.bus.publish(
        subjects.REGISTER_CLUSTER,
        RegisterCluster(
            operation_id="reg-b",
            cluster=b.id,
            kubeconfig=kubeconfig_text(b.emulator.url, b.token, ca=b.emulator.ca_pem),
        ),
    )
    ids = [f"{a.id}.shop.web", f"{a.id}.shop.api", f"{a.id}.batch.batch", f"{b.id}.blog.blog"]
    for app_id in ids:
        await eventually(partial(lab.app, app_id), what=f"app {app_id}")

    web = await lab.app(f"{a.id}.shop.web")
    assert web is not None and web.grouping == "helm" and web.state == "Available"
    assert web.helm is not None
    assert (web.helm.name, web.helm.revision, web.helm.chart, web.helm.chart_version) == (
        "web",
        2,
        "web",
        "1.2.3",
    )
    assert web.helm.status == "deployed"
    kinds = {(r.kind, r.name) for r in web.resources}
    assert kinds == {
        ("ConfigMap", "web-config"),
        ("Deployment", "web"),
        ("Ingress", "web"),
        ("PersistentVolumeClaim", "web-data"),
        ("Role", "web"),
        ("RoleBinding", "web"),
        ("Secret", "sh.helm.release.v1.web.v1"),
        ("Secret", "sh.helm.release.v1.web.v2"),
        ("Secret", "web-creds"),
        ("Service", "web"),
        ("ServiceAccount", "web"),
    }  # the pod counts for the state but is not a resource to back up
    [claim] = web.claims
    assert (claim.name, claim.requested_bytes, claim.storage_class) == ("web-data", 1 << 30, "fast")
    assert (claim.volume_name, claim.phase, claim.backend_volume) == ("pv-web", "Bound", "vol-123")
    assert [(d.kind, d.name) for d in web.dependencies] == [
        ("PersistentVolume", "pv-web"),
        ("StorageClass", "fast"),
    ]
    assert [(w.kind, w.name, w.ready, w.desired, w.images) for w in web.workload_status] == [
        ("Deployment", "web", 1, 1, ["nginx:1.25"])
    ]

    api = await lab.app(f"{a.id}.shop.api")
    assert api is not None and api.grouping == "label"
    assert api.selector == {"app.kubernetes.io/name": "api"}
    assert [(w.kind, w.name) for w in api.workloads] == [
        ("CronJob", "api-cleanup"),
        ("Deployment", "api"),
    ]  # the CronJob's Job is derived: not listed
    batch = await lab.app(f"{a.id}.batch.batch")
    assert batch is not None and batch.grouping == "namespace"
    assert [c.name for c in batch.claims] == ["data-db-0"]
    assert {w.kind for w in batch.workloads} == {"DaemonSet", "StatefulSet"}
    blog = await lab.app(f"{b.id}.blog.blog")
    assert blog is not None and [c.requested_bytes for c in blog.claims] == [5 << 30]

    await eventually(lambda: len(lab.of("app.discovered")) >= 4, what="discovered events")
    discovered = {e["app"]["name"] for e in lab.of("app.discovered")}
    assert discovered == {"web", "api", "batch", "blog"}
    for value in await lab.values():  # no Secret data, no Helm values or manifest in KV
        assert SECRET_VALUE.encode() not in value
        assert b"aHVudGVyMg" not in value
    for event in lab.events:
        assert SECRET_VALUE not in event.model_dump_json()


async def test_state_goes_failed_and_back_then_removed(lab: Lab) -> None:
    a = await lab.cluster("a")
    await a.create(
        o.namespace("shop"),
        o.deployment("web", "shop", {"app": "web"}, claims=("data",)),
        # No such PV: the emulated binder leaves the claim's phase as patched (it would
        # bind it again to an existing PV, and never marks a claim Lost itself).
        o.pvc("data", "shop", {"app": "web"}, volume="pv-gone"),
        o.pod("web-1", "shop", {"app.kubernetes.io/component": "web"}),
    )
    await lab.discovery([a])
    app_id = f"{a.id}.shop.web"
    await eventually(lambda: lab.app(app_id), what="the app")

    async def state() -> str | None:
        app = await lab.app(app_id)
        return app.state if app else None

    await a.kube.patch("v1", "Pod", "web-1", "shop", {"status": o.crash_status()}, status=True)
    await eventually(lambda: _is(state(), "Failed"), what="Failed (crash loop)")
    app = await lab.app(app_id)
    assert app is not None and app.reasons == ["Pod web-1: container main in CrashLoopBackOff"]
    changed = await eventually(lambda: lab.of("app.changed", app_id), what="changed event")
    assert changed[-1]["diff"]["changed"]["state"] == "Available -> Failed"

    await a.kube.patch(
        "v1", "Pod", "web-1", "shop", {"status": {"containerStatuses": []}}, status=True
    )
    await eventually(lambda: _is(state(), "Available"), what="Available again")
    await a.kube.patch(
        "v1", "PersistentVolumeClaim", "data", "shop", {"status": {"phase": "Lost"}}, status=True
    )
    await eventually(lambda: _is(state(), "Failed"), what="Failed (claim lost)")
    app = await lab.app(app_id)
    assert app is not None and app.reasons == ["PersistentVolumeClaim data is Lost"]

    await a.kube.delete("v1", "Namespace", "shop")
    await eventually(lambda: lab.of("app.removed", app_id), what="app.removed")
    assert await lab.app(app_id) is None
    assert lab.of("app.removed", app_id)[-1]["app"]["state"] == "Removed"


async def _is(value: object, wanted: str) -> bool:
    return bool(await value == wanted)  # type: ignore[misc]


async def test_a_rolling_update_is_one_change_with_a_compact_diff(lab: Lab) -> None:
    a = await lab.cluster("a")
    await a.create(o.namespace("shop"), o.deployment("web", "shop", {"app": "web"}, replicas=3))
    await lab.discovery([a])
    app_id = f"{a.id}.shop.web"
    await eventually(lambda: lab.of("app.discovered", app_id), what="discovered")
    patch = {
        "spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:1.26"}]}}}
    }
    await a.kube.patch("apps/v1", "Deployment", "web", "shop", patch)
    for i in range(20):  # the rollout's status updates, each undone by the emulated controller
        status = {"status": {"readyReplicas": i % 3, "updatedReplicas": i % 4}}
        await a.kube.patch("apps/v1", "Deployment", "web", "shop", status, status=True)
    await eventually(lambda: lab.of("app.changed", app_id), what="changed")
    await asyncio.sleep(1.0)  # anything late would be a second change
    [changed] = lab.of("app.changed", app_id)
    assert changed["diff"] == {
        "added": [],
        "removed": [],
        "changed": {"Deployment/web": "images nginx:1.25 -> nginx:1.26"},
    }
    assert changed["changed"] == ["workload_status"]


async def test_twenty_quick_status_updates_are_one_change(lab: Lab) -> None:
    a = await lab.cluster("s", controllers=False)  # no controller to undo the updates
    await a.create(o.namespace("shop"), o.deployment("web", "shop", {"app": "web"}, replicas=3))
    ready = {"status": {"replicas": 3, "readyReplicas": 3}}
    await a.kube.patch("apps/v1", "Deployment", "web", "shop", ready, status=True)
    await lab.discovery([a])
    app_id = f"{a.id}.shop.web"
    [found] = await eventually(lambda: lab.of("app.discovered", app_id), what="discovered")
    assert found["app"]["state"] == "Available"
    for i in range(20):  # a rollout: readiness goes up and down, and ends at 1 of 3
        status = {"status": {"readyReplicas": [2, 1, 0, 3][i % 4] if i < 19 else 1}}
        await a.kube.patch("apps/v1", "Deployment", "web", "shop", status, status=True)
    await eventually(lambda: lab.of("app.changed", app_id), what="changed")
    await asyncio.sleep(1.0)  # anything late would be a second change
    [changed] = lab.of("app.changed", app_id)
    assert changed["diff"]["changed"] == {
        "state": "Available -> Failed",
        "reasons": "- -> Deployment web: 1/3 ready",
        "Deployment/web": "ready 3/3 -> 1/3",
    }


async def test_a_claim_pending_past_the_grace_fails_its_app_with_no_new_event(lab: Lab) -> None:
    a = await lab.cluster("p")
    await a.create(
        o.namespace("shop"),
        o.deployment("web", "shop", {"app": "web"}, claims=("data",)),
        o.pvc("data", "shop", storage_class="none-such"),  # stays Pending
    )
    await lab.discovery([a], tuning=replace(FAST, pending_grace=2.0))
    app_id = f"{a.id}.shop.web"
    [found] = await eventually(lambda: lab.of("app.discovered", app_id), what="discovered")
    assert found["app"]["state"] == "Available"
    [changed] = await eventually(lambda: lab.of("app.changed", app_id), what="the grace ends")
    assert changed["diff"]["changed"]["state"] == "Available -> Failed"
    assert changed["app"]["reasons"] == ["PersistentVolumeClaim data Pending for over 2s"]
