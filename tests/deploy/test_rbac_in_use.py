"""The chart's RBAC against the Kubernetes requests the services' own code makes.

Each test renders the chart, puts an authorizing proxy (`rbac_proxy.py`) for one service
account in front of the Kubernetes API emulator, and runs that service's code through it
with `KubeCluster`: what the chart does not grant fails with Forbidden, as in a cluster.
The static table of expected grants is in `chart_support.py`; these tests show the grants
are enough for what the code does (and, with the refusals, that the proxy enforces them).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from services.protection import inplace
from services.protection.agents import DirectClusters
from services.protection.context import ProtectionContext
from services.protection.deletion import SNAPSHOT_API
from services.protection.hooks import run_hooks
from services.protection.mobility import SCALABLE
from services.protection.restore_apply import apply_all
from services.protection.restore_plan import build_plan
from services.protection.state.operations import OperationStore
from tests.deploy.chart_support import NAMESPACE, Rendering, _renderings
from tests.deploy.rbac_proxy import AuthorizingProxy, grants_of
from tests.protection.hook_kit import app, container, deployment, hook, lines, record_to
from tests.protection.hook_kit import running_pod as hook_pod
from vessel.buckets import kube_secret_reader
from vessel.bus.nats_port import Bus
from vessel.contracts.protection import RestoreOptions
from vessel.kube.client import KubeCluster
from vessel.kube.errors import Forbidden
from vessel.kube.objects import KubeObject
from vessel_dev.emulators.kube import KubeEmulator

APP_NS = "shop"  # hook_kit's namespace
As = Callable[[str], Awaitable[tuple[KubeCluster, AuthorizingProxy]]]


def _default() -> Rendering:
    return next(r for r in _renderings() if r.case == "default" and not r.monitoring)


@pytest.fixture
def admin(kube_emulator: tuple[KubeEmulator, Path]) -> KubeCluster:
    return KubeCluster(kube_emulator[1], "admin")


@pytest.fixture
async def as_service(kube_emulator: tuple[KubeEmulator, Path], tmp_path: Path) -> AsyncIterator[As]:
    """`as_service(component)`: a cluster client holding that service's chart RBAC."""
    emulator, kubeconfig = kube_emulator
    proxies: list[AuthorizingProxy] = []

    async def make(component: str) -> tuple[KubeCluster, AuthorizingProxy]:
        grants = grants_of(_default(), component)
        proxy = AuthorizingProxy(emulator.url, grants, emulator.client_ssl_context())
        await proxy.start()
        proxies.append(proxy)
        config = proxy.kubeconfig(kubeconfig, tmp_path / f"{component}.kubeconfig")
        return KubeCluster(config, component), proxy

    yield make
    for proxy in proxies:
        await proxy.stop()


def _obj(api: str, kind: str, name: str, ns: str | None = APP_NS, **extra: Any) -> KubeObject:
    meta: KubeObject = {"name": name, "labels": {"app": "shop"}}
    if ns:
        meta["namespace"] = ns
    return {"apiVersion": api, "kind": kind, "metadata": meta, **extra}


def _pod_template() -> KubeObject:
    return {
        "metadata": {"labels": {"app": "shop"}},
        "spec": {"containers": [{"name": "app", "image": "shop/app:1"}]},
    }


def _app_objects() -> list[KubeObject]:
    """One object of every kind a backup of an app holds (discovery's namespaced kinds)."""
    selector = {"matchLabels": {"app": "shop"}}
    workload = {"selector": selector, "template": _pod_template()}
    job = {
        "template": {
            **_pod_template(),
            "spec": {**_pod_template()["spec"], "restartPolicy": "Never"},
        }
    }
    return [
        _obj("v1", "Namespace", APP_NS, ns=None),
        _obj("v1", "ServiceAccount", "shop"),
        _obj("v1", "Secret", "shop-db", stringData={"password": "s3cret"}),
        _obj("v1", "ConfigMap", "shop", data={"mode": "prod"}),
        _obj(
            "rbac.authorization.k8s.io/v1",
            "Role",
            "shop",
            rules=[{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
        ),
        _obj(
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            "shop",
            roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "shop"},
            subjects=[{"kind": "ServiceAccount", "name": "shop", "namespace": APP_NS}],
        ),
        _obj(
            "v1",
            "PersistentVolumeClaim",
            "data",
            spec={"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        ),
        _obj("v1", "Service", "shop", spec={"selector": {"app": "shop"}, "ports": [{"port": 80}]}),
        _obj("apps/v1", "Deployment", "web", spec={"replicas": 2, **workload}),
        _obj("apps/v1", "StatefulSet", "db", spec={"replicas": 1, "serviceName": "db", **workload}),
        _obj("apps/v1", "DaemonSet", "agent", spec=workload),
        _obj("batch/v1", "Job", "migrate", spec=job),
        _obj(
            "batch/v1",
            "CronJob",
            "report",
            spec={"schedule": "0 * * * *", "jobTemplate": {"spec": job}},
        ),
        _obj(
            "networking.k8s.io/v1",
            "Ingress",
            "shop",
            spec={"defaultBackend": {"service": {"name": "shop", "port": {"number": 80}}}},
        ),
    ]


async def test_the_mover_reads_bucket_secrets_in_the_release_namespace_only(
    admin: KubeCluster, as_service: As
) -> None:
    for ns, name in ((NAMESPACE, "bucket-keys"), (APP_NS, "app-keys")):
        await admin.create(_obj("v1", "Namespace", ns, ns=None))
        await admin.create(_obj("v1", "Secret", name, ns, stringData={"accessKey": "AK"}))
    mover, proxy = await as_service("mover")
    read = kube_secret_reader(mover)

    assert await read(NAMESPACE, "bucket-keys") == {"accessKey": "AK"}
    assert await read(NAMESPACE, "missing") is None
    with pytest.raises(Forbidden):
        await read(APP_NS, "app-keys")
    assert [(a.verb, a.resource, a.namespace) for a in proxy.denied] == [("get", "secrets", APP_NS)]


async def test_the_agent_restores_updates_and_clears_every_kind_an_app_holds(
    as_service: As, bus: Bus
) -> None:
    """Protection's restore flow, its calls made with the agent's (discovery's) grants."""
    kube, proxy = await as_service("discovery")
    plan = build_plan(_app_objects(), {}, RestoreOptions())

    created = await apply_all(kube, plan.objects, "update")
    assert {(i.kind, i.state, i.message) for i in created} == {
        (o["kind"], "Completed", "created") for o in plan.objects
    }
    again = await apply_all(kube, plan.objects, "update")  # `existing: update`: PUT
    kept = {"Namespace", "PersistentVolumeClaim"}  # never replaced, whatever the policy
    assert {(i.kind, i.state) for i in again} == {
        (o["kind"], "Skipped" if o["kind"] in kept else "Completed") for o in plan.objects
    }, [i for i in again if i.state == "Failed"]
    for kind in SCALABLE:  # migrate's scale-down
        name = next(o["metadata"]["name"] for o in plan.objects if o["kind"] == kind)
        await kube.patch("apps/v1", kind, name, APP_NS, {"spec": {"replicas": 0}})

    p = ProtectionContext(
        bus=bus,
        clusters=DirectClusters({"c1": kube}),
        open_bucket=lambda name: pytest.fail(f"no bucket is opened here ({name})"),
        operations=OperationStore(await bus.kv("operations")),
        inventory=await bus.kv("inventory"),
        waits=await bus.kv("restore_waits"),
    )
    cleared = await inplace.clear(p, kube, "c1.shop.rbac-check", plan, patience=10)
    assert cleared == len(plan.last) + 1  # the workloads and the claim
    assert await kube.get("apps/v1", "Deployment", "web", APP_NS) is None
    assert proxy.denied == [], proxy.denied


async def test_the_agent_runs_hooks_and_deletes_app_snapshot_volume_snapshots(
    admin: KubeCluster, as_service: As, tmp_path: Path
) -> None:
    await admin.create(_obj("v1", "Namespace", APP_NS, ns=None))
    web = await deployment(admin, "web", {"app": "web"})
    await hook_pod(admin, "web-1", {"app": "web"}, [container("app", "shop/web:1")])
    await admin.create(
        _obj(
            SNAPSHOT_API,
            "VolumeSnapshot",
            "snap-1-data",
            spec={"source": {"persistentVolumeClaimName": "data"}},
        )
    )
    kube, proxy = await as_service("discovery")
    log = tmp_path / "ran.log"

    outcome = await run_hooks(
        kube, app([web]), [hook("flush", command=record_to(log))], "pre-snapshot"
    )
    assert not outcome.failed, outcome.items
    assert lines(log) == ["web-1 app "]
    await kube.delete(SNAPSHOT_API, "VolumeSnapshot", "snap-1-data", APP_NS)  # as deletion does
    assert await admin.get(SNAPSHOT_API, "VolumeSnapshot", "snap-1-data", APP_NS) is None
    assert proxy.denied == [], proxy.denied
    assert {(a.verb, a.resource) for a in proxy.allowed} >= {
        ("get", "pods/exec"),
        ("create", "pods/exec"),
        ("list", "pods"),
        ("delete", "volumesnapshots"),
    }


async def test_the_provisioner_takes_group_snapshots_and_reverts_claims(
    admin: KubeCluster, as_service: As
) -> None:
    await admin.create(_obj("v1", "Namespace", APP_NS, ns=None))
    claim = _obj(
        "v1",
        "PersistentVolumeClaim",
        "data",
        spec={"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    )
    await admin.create(claim)
    kube, proxy = await as_service("provisioner")
    snapshot = _obj(
        SNAPSHOT_API,
        "VolumeSnapshot",
        "g1-data",
        spec={"source": {"persistentVolumeClaimName": "data"}},
    )

    await kube.create(snapshot)  # a group member
    await kube.delete(SNAPSHOT_API, "VolumeSnapshot", "g1-data", APP_NS)  # a failed member
    await kube.patch(  # revert in place clears its request
        "v1", "PersistentVolumeClaim", "data", APP_NS, {"metadata": {"annotations": {"a": "b"}}}
    )
    assert proxy.denied == [], proxy.denied


async def test_the_gateway_and_protection_have_no_access(
    admin: KubeCluster, as_service: As
) -> None:
    await admin.create(_obj("v1", "Namespace", APP_NS, ns=None))
    await admin.create(_obj("v1", "Namespace", NAMESPACE, ns=None))
    await admin.create(_obj("v1", "Secret", "bucket-keys", NAMESPACE, stringData={"k": "v"}))
    for component in ("gateway", "protection"):
        kube, _ = await as_service(component)
        with pytest.raises(Forbidden):
            await kube.list("v1", "Pod", APP_NS)
        with pytest.raises(Forbidden):
            await kube_secret_reader(kube)(NAMESPACE, "bucket-keys")
    agent, _ = await as_service("discovery")  # protection's bucket Secrets, through the agent
    assert await kube_secret_reader(agent)(NAMESPACE, "bucket-keys") == {"k": "v"}
