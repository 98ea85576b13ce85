"""User-defined apps (namespaces + label selectors) take precedence over automatic
grouping; they can be updated and unmanaged (undefined)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from functools import partial

import pytest

from tests.discovery import objects as o
from tests.discovery.lab import FAST, Lab, eventually
from vessel.contracts import subjects
from vessel.contracts.commands import DefineApp, UndefineApp
from vessel.contracts.models import LabelRequirement, NamespaceSelection
from vessel.stopping import cancel_and_wait

pytestmark = pytest.mark.timeout(60)


def define(cluster: str, name: str, *include: NamespaceSelection, ns: str = "shop") -> DefineApp:
    return DefineApp(
        operation_id=uuid.uuid4().hex,
        cluster=cluster,
        namespace=ns,
        name=name,
        include=list(include),
    )


async def test_define_update_and_undefine(lab: Lab) -> None:
    c = await lab.cluster("u")
    await c.create(
        o.namespace("shop"),
        o.namespace("shared"),
        o.deployment("web", "shop", {}, annotations=o.helm_annotations("web", "shop")),
        o.deployment("api", "shop", {"app.kubernetes.io/name": "api"}),
        o.simple("Service", "api", "shop", {"app.kubernetes.io/name": "api"}),
        o.deployment("cache", "shared", {"tier": "cache"}),
        o.simple("ConfigMap", "cache-config", "shared", {"tier": "cache"}),
        o.deployment("other", "shared", {}),
    )
    await lab.discovery([c])
    ids = {n: f"{c.id}.{n}" for n in ("shop.web", "shop.api", "shared.shared", "shop.store")}
    for name in ("shop.web", "shop.api", "shared.shared"):
        await eventually(partial(lab.of, "app.discovered", ids[name]), what=name)

    store = define(
        c.id,
        "store",
        NamespaceSelection(
            namespace="shop",
            match_expressions=[
                LabelRequirement(key="app.kubernetes.io/name", operator="In", values=["api"])
            ],
        ),
        NamespaceSelection(namespace="shared", match_labels={"tier": "cache"}),
    )
    await lab.bus.publish(subjects.DEFINE_APP, store)
    app = await eventually(lambda: lab.app(ids["shop.store"]), what="the user-defined app")
    assert app.grouping == "user" and app.namespaces == ["shared", "shop"]
    assert {(r.namespace, r.kind, r.name) for r in app.resources} == {
        ("shop", "Deployment", "api"),
        ("shop", "Service", "api"),
        ("shared", "Deployment", "cache"),
        ("shared", "ConfigMap", "cache-config"),
    }
    await eventually(lambda: lab.of("app.removed", ids["shop.api"]), what="api absorbed")
    shared = await eventually(lambda: lab.of("app.changed", ids["shared.shared"]), what="shared")
    assert shared[-1]["diff"]["removed"] == ["ConfigMap/cache-config", "Deployment/cache"]
    assert (await lab.app(ids["shop.web"])).grouping == "helm"  # type: ignore[union-attr]

    # Update: the selector narrows; the cache goes back to its namespace's app.
    narrower = store.model_copy(update={"include": store.include[:1]})
    await lab.bus.publish(subjects.DEFINE_APP, narrower)
    changed = await eventually(lambda: lab.of("app.changed", ids["shop.store"]), what="update")
    assert changed[-1]["diff"]["removed"] == [
        "ConfigMap/shared/cache-config",
        "Deployment/shared/cache",
    ]

    # Unmanage: the app is gone, its objects are grouped automatically again.
    undefine = UndefineApp(operation_id="u1", cluster=c.id, namespace="shop", name="store")
    await lab.bus.publish(subjects.UNDEFINE_APP, undefine)
    await eventually(lambda: lab.of("app.removed", ids["shop.store"]), what="unmanaged")
    await eventually(lambda: len(lab.of("app.discovered", ids["shop.api"])) == 2, what="api back")
    assert await lab.app(ids["shop.store"]) is None


async def test_an_app_selecting_nothing_is_removed_until_its_objects_come(lab: Lab) -> None:
    c = await lab.cluster("e")
    await lab.discovery([c])
    await lab.bus.publish(subjects.DEFINE_APP, define(c.id, "later", ns="later"))
    app_id = f"{c.id}.later.later"
    app = await eventually(lambda: lab.app(app_id), what="the defined app")
    assert (app.state, app.reasons) == ("Removed", ["selects no resources"])
    await c.create(o.namespace("later"), o.deployment("job", "later", {}))
    changed = await eventually(lambda: lab.of("app.changed", app_id), what="objects arrive")
    assert changed[-1]["diff"]["changed"]["state"] == "Removed -> Available"


async def test_defining_an_app_of_an_unknown_cluster_is_dead_lettered(lab: Lab) -> None:
    await lab.discovery()
    letters: list[str] = []
    since = datetime.now(UTC)

    async def watch() -> None:
        async for _, event in lab.bus.tail("vessel.evt.system.>", since=since):
            letters.append(str(event.data.get("error")))

    task = asyncio.create_task(watch())
    try:
        await lab.bus.publish(subjects.DEFINE_APP, define(f"{lab.prefix}-nowhere", "x"))
        await eventually(lambda: [e for e in letters if lab.prefix in e], what="dead letter")
    finally:
        await cancel_and_wait([task])
    [error] = [e for e in letters if lab.prefix in e]
    assert error == (
        f"permanent error: define app shop/x: cluster '{lab.prefix}-nowhere' is not registered"
    )


async def test_a_clusters_own_agent_watches_it_and_follows_the_hubs_definitions(
    lab: Lab,
) -> None:
    """`agent: cluster`: the hub's discovery leaves the cluster to the discovery running in
    it, which records it as its agent, inventories it, and applies the apps the hub's
    define and undefine commands store in KV."""
    c = await lab.cluster("ag")
    labels = {"app.kubernetes.io/name": "api"}
    await c.create(o.namespace("shop"), o.deployment("api", "shop", labels))
    hub = await lab.discovery(in_cluster=[c])
    agent = await lab.discovery(agent_of=c)
    api, store = f"{c.id}.shop.api", f"{c.id}.shop.store"
    await eventually(partial(lab.of, "app.discovered", api), what="the agent's inventory")
    record = await lab.record(c.id)
    assert record is not None and record.source == "agent"
    assert c.id not in hub.ctx.watched and list(agent.ctx.watched) == [c.id]

    selection = NamespaceSelection(namespace="shop", match_labels=labels)
    await lab.bus.publish(subjects.DEFINE_APP, define(c.id, "store", selection))
    app = await eventually(lambda: lab.app(store), what="the user-defined app, by the agent")
    assert app.grouping == "user"
    await eventually(partial(lab.of, "app.removed", api), what="api absorbed")
    undefine = UndefineApp(operation_id="u2", cluster=c.id, namespace="shop", name="store")
    await lab.bus.publish(subjects.UNDEFINE_APP, undefine)
    await eventually(partial(lab.of, "app.removed", store), what="unmanaged, by the agent")


async def test_a_silent_agent_makes_its_cluster_away_until_it_reports_again(lab: Lab) -> None:
    """The agent's record is its heartbeat: stopped, its cluster is announced unreachable
    after three missed beats, naming the last one; started again, recovered."""
    c = await lab.cluster("hb")
    await lab.discovery(in_cluster=[c])
    agent = await lab.discovery(agent_of=c)
    record = await eventually(lambda: lab.record(c.id), what="the agent's record")
    assert record.agent_version and record.heartbeat_seconds == FAST.contact_interval
    assert not record.away(datetime.now(UTC))
    await lab.stop(agent)
    gone = await eventually(partial(lab.of, "cluster.unreachable", c.id), within=15)
    assert "its agent has not reported since" in gone[-1]["cluster"]["reason"]
    stale = await lab.record(c.id)
    assert stale is not None and stale.away(datetime.now(UTC))
    await lab.discovery(agent_of=c)
    await eventually(partial(lab.of, "cluster.recovered", c.id), within=15, what="back")


async def test_a_discovered_app_unmanaged_stays_out_across_a_restart_until_managed(
    lab: Lab,
) -> None:
    c = await lab.cluster("m")
    await c.create(
        o.namespace("shop"),
        o.deployment("web", "shop", {"app.kubernetes.io/name": "web"}),
        o.deployment("api", "shop", {"app.kubernetes.io/name": "api"}),
    )
    await lab.discovery([c])
    web, api = f"{c.id}.shop.web", f"{c.id}.shop.api"
    for app_id in (web, api):
        await eventually(partial(lab.of, "app.discovered", app_id), what=app_id)

    unmanage = define(c.id, "web").model_copy(update={"unmanaged": True})
    await lab.bus.publish(subjects.DEFINE_APP, unmanage)
    await eventually(lambda: lab.of("app.removed", web), what="web unmanaged")
    assert await lab.app(web) is None
    assert await lab.app(api) is not None  # the other app of its namespace stays

    await lab.stop_discovery()
    await lab.discovery([c])
    await c.create(o.deployment("worker", "shop", {"app.kubernetes.io/name": "worker"}))
    await eventually(partial(lab.of, "app.discovered", f"{c.id}.shop.worker"), what="worker")
    assert await lab.app(web) is None  # the decision survived the restart
    assert len(lab.of("app.discovered", web)) == 1

    manage = UndefineApp(operation_id="m1", cluster=c.id, namespace="shop", name="web")
    await lab.bus.publish(subjects.UNDEFINE_APP, manage)
    await eventually(lambda: len(lab.of("app.discovered", web)) == 2, what="web managed again")
    assert (await lab.app(web)) is not None
