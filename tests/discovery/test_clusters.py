"""The cluster registry over the bus: register / update / remove, health, bad input,
recovery of an unreachable cluster, and restarts of discovery itself."""

from __future__ import annotations

import asyncio
import socket
import stat
import uuid
from functools import partial

import pytest

from tests.discovery import objects as o
from tests.discovery.kubeproxy import kubeconfig_text
from tests.discovery.lab import Cluster, Lab, eventually
from vessel.contracts import subjects
from vessel.contracts.commands import RegisterCluster, RemoveCluster
from vessel.contracts.events import ClusterRecord

pytestmark = pytest.mark.timeout(60)


def register(cluster: str, *, path: str | None = None, text: str | None = None) -> RegisterCluster:
    return RegisterCluster(
        operation_id=uuid.uuid4().hex, cluster=cluster, kubeconfig_path=path, kubeconfig=text
    )


async def web_app(c: Cluster, ns: str = "shop") -> None:
    await c.create(o.namespace(ns), o.deployment("web", ns, {"app": "web"}))


async def state_of(lab: Lab, cid: str, state: str) -> ClusterRecord | None:
    record = await lab.record(cid)
    return record if record is not None and record.state == state else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_register_update_remove_and_restart(lab: Lab) -> None:
    a, b, b2 = await lab.cluster("a"), await lab.cluster("b"), await lab.cluster("b2")
    for c in (a, b):
        await web_app(c)
    await b2.create(o.namespace("blog"), o.deployment("blog", "blog", {"app": "blog"}))
    await lab.discovery([a])
    await lab.bus.publish(subjects.REGISTER_CLUSTER, register(b.id, path=str(b.kubeconfig)))
    record = await eventually(lambda: state_of(lab, b.id, "Available"), what="b Available")
    assert record.server == b.emulator.url and record.source == "registered"
    assert record.last_contact is not None and record.reason == "" and record.conditions == []
    configured = await eventually(lambda: state_of(lab, a.id, "Available"), what="a Available")
    assert configured.source == "config"
    await eventually(lambda: lab.app(f"{b.id}.shop.web"), what="b's app")
    assert {e["cluster"]["id"] for e in lab.of("cluster.registered")} == {a.id, b.id}
    stored = lab.tmp / "state" / "clusters"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o700
    assert stat.S_IMODE((stored / f"{b.id}.path").stat().st_mode) == 0o600

    # Update: b now points at another server (inline text): its apps follow the server.
    text = kubeconfig_text(b2.emulator.url, b2.token, ca=b2.emulator.ca_pem)
    await lab.bus.publish(subjects.UPDATE_CLUSTER, register(b.id, text=text))
    await eventually(lambda: lab.app(f"{b.id}.blog.blog"), what="the new server's app")
    await eventually(lambda: lab.of("app.removed", f"{b.id}.shop.web"), what="old app removed")
    record = await eventually(lambda: state_of(lab, b.id, "Available"), what="b updated")
    assert record.server == b2.emulator.url
    inline = stored / f"{b.id}.kubeconfig"
    assert stat.S_IMODE(inline.stat().st_mode) == 0o600 and not (stored / f"{b.id}.path").exists()

    # Restart: both clusters are resumed from KV and the state directory, nothing re-added.
    before = (len(lab.of("app.discovered")), len(lab.of("cluster.registered")))
    await lab.stop_discovery()
    await lab.discovery([a])
    await eventually(lambda: _watching(lab, b.id), what="b resumed")
    await b2.create(o.deployment("api", "blog", {"app": "api"}))
    await eventually(lambda: lab.of("app.discovered", f"{b.id}.blog.api"), what="a new app")
    await asyncio.sleep(0.3)
    assert len(lab.of("app.discovered")) == before[0] + 1  # only the new app
    assert len(lab.of("cluster.registered")) == before[1]

    # Remove: apps, record and kubeconfig are gone.
    await lab.bus.publish(subjects.REMOVE_CLUSTER, RemoveCluster(operation_id="rm", cluster=b.id))
    await eventually(lambda: lab.of("cluster.removed", b.id), what="cluster.removed")
    assert await lab.record(b.id) is None
    assert await lab.app(f"{b.id}.blog.blog") is None and not inline.exists()
    assert {e["app"]["name"] for e in lab.of("app.removed") if b.id in e["app"]["cluster"]} == {
        "web",
        "blog",
        "api",
    }
    assert await lab.app(f"{a.id}.shop.web") is not None  # the other cluster is untouched


async def _watching(lab: Lab, cid: str) -> bool:
    cluster = lab.services[-1].ctx.watched.get(cid)
    return bool(cluster and cluster.inventory and cluster.health.last_contact)


async def test_each_bad_input_is_a_clear_condition_and_others_keep_working(lab: Lab) -> None:
    good = await lab.cluster("good")
    rbac = await lab.cluster("rbac", proxy=True)
    assert rbac.proxy is not None
    rbac.proxy.forbidden |= {"secrets", "ingresses"}
    for c in (good, rbac):
        await web_app(c)
    await lab.discovery([good])
    port = free_port()
    token = good.token
    cases = {
        "yaml": register(f"{lab.prefix}-yaml", text=f"clusters:\n  - token: {token}\n bad"),
        "context": register(f"{lab.prefix}-context", text="apiVersion: v1\nkind: Config\n"),
        "missing": register(f"{lab.prefix}-missing", path=str(lab.tmp / "nowhere.yaml")),
        "neither": register(f"{lab.prefix}-neither"),
        "down": register(
            f"{lab.prefix}-down", text=kubeconfig_text(f"http://127.0.0.1:{port}", token)
        ),
        "401": register(
            f"{lab.prefix}-401",
            text=kubeconfig_text(good.emulator.url, "wrong", ca=good.emulator.ca_pem),
        ),
        "rbac": register(rbac.id, path=str(rbac.kubeconfig)),
    }
    for cmd in cases.values():
        await lab.bus.publish(subjects.REGISTER_CLUSTER, cmd)
    expected = {
        "yaml": ("InvalidKubeconfig", "not valid YAML at line 3, column 2"),
        "context": ("InvalidKubeconfig", "no current-context"),
        "missing": (
            "InvalidKubeconfig",
            f"kubeconfig file {lab.tmp / 'nowhere.yaml'} does not exist",
        ),
        "neither": ("InvalidKubeconfig", "give exactly one of kubeconfig_path and kubeconfig"),
        "down": ("ServerUnreachable", f"API server http://127.0.0.1:{port} is unreachable: "),
        "401": ("CredentialsRejected", "rejected the kubeconfig's credentials (HTTP 401"),
    }
    for case, (reason, text) in expected.items():
        cid = cases[case].cluster
        record = await eventually(partial(state_of, lab, cid, "Unreachable"), what=case)
        [condition] = record.conditions
        assert condition.reason == reason and text in condition.message, (case, condition)
        assert cid in condition.message or "API server" in condition.message, condition
        assert record.reason == condition.message
        unreachable = await eventually(partial(lab.of, "cluster.unreachable", cid), what=case)
        assert unreachable[0]["cluster"]["reason"] == condition.message
        order = [e.type.split(".")[-2] for e in lab.events if e.subject == f"/clusters/{cid}"]
        assert order == ["registered", "unreachable"], case
    record = await eventually(lambda: _with_conditions(lab, rbac.id), what="the RBAC condition")
    assert record.state == "Available"
    [forbidden] = record.conditions
    assert forbidden.reason == "Forbidden"
    assert forbidden.kinds == ["secrets", "ingresses.networking.k8s.io"]
    assert forbidden.message == (
        "RBAC forbids listing or watching secrets, ingresses.networking.k8s.io (HTTP 403)"
    )
    await eventually(lambda: lab.app(f"{rbac.id}.shop.web"), what="the other kinds still work")
    assert (await lab.record(good.id)).state == "Available"  # type: ignore[union-attr]
    assert await lab.app(f"{good.id}.shop.web") is not None
    for value in await lab.values():
        assert token.encode() not in value

    fixed = register(
        cases["yaml"].cluster,
        text=kubeconfig_text(good.emulator.url, token, ca=good.emulator.ca_pem),
    )
    await lab.bus.publish(subjects.UPDATE_CLUSTER, fixed)
    await eventually(partial(lab.of, "cluster.recovered", fixed.cluster), what="fixed by update")
    await eventually(lambda: lab.app(f"{fixed.cluster}.shop.web"), what="its app")


async def _with_conditions(lab: Lab, cid: str) -> ClusterRecord | None:
    record = await lab.record(cid)
    if record is None or not record.conditions or len(record.conditions[0].kinds) < 2:
        return None
    return record


async def test_an_unreachable_cluster_recovers_and_resumes_without_relisting(lab: Lab) -> None:
    c = await lab.cluster("flaky", proxy=True)
    assert c.proxy is not None
    await web_app(c)
    await lab.discovery([c])
    app_id = f"{c.id}.shop.web"
    await eventually(lambda: lab.of("app.discovered", app_id), what="discovered")
    lists = dict(c.proxy.lists)
    await c.proxy.down()
    down = await eventually(lambda: lab.of("cluster.unreachable", c.id), what="unreachable")
    assert "is unreachable" in down[0]["cluster"]["reason"]
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "web:2"}]}}}}
    await c.kube.patch("apps/v1", "Deployment", "web", "shop", patch)  # while it is away
    await c.proxy.up()
    await eventually(lambda: lab.of("cluster.recovered", c.id), what="recovered")
    [changed] = await eventually(lambda: lab.of("app.changed", app_id), what="the missed change")
    assert changed["diff"]["changed"] == {"Deployment/web": "images nginx:1.25 -> web:2"}
    assert len(lab.of("app.discovered", app_id)) == 1  # resumed, not re-added
    assert dict(c.proxy.lists) == lists  # watches resumed from their resourceVersion
    record = await lab.record(c.id)
    assert record is not None and record.state == "Available" and record.conditions == []
