"""Queries served to the gateway over NATS: list apps (filters, pages), get one app,
list clusters; a bad request gets an error naming what is wrong."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.discovery.queries import QueryError, list_apps, request
from tests.discovery import objects as o
from tests.discovery.lab import Lab, eventually
from vessel.contracts import queries
from vessel.contracts.events import AppPage, AppQuery, AppRecord

pytestmark = pytest.mark.timeout(60)


async def ask(lab: Lab, subject: str, **body: Any) -> dict[str, Any]:
    reply = await request(lab.bus, subject, json.dumps(body).encode())
    result: dict[str, Any] = json.loads(reply)
    return result


async def test_queries_over_nats(lab: Lab) -> None:
    a, b = await lab.cluster("qa"), await lab.cluster("qb")
    await a.create(
        o.namespace("shop"),
        o.deployment("web", "shop", {"app": "web", "team": "red"}),
        o.deployment("api", "shop", {"app": "api", "team": "blue"}),
        o.deployment("db", "shop", {"app": "db", "team": "red"}),
        o.pod("api-1", "shop", {"app.kubernetes.io/component": "api"}),
    )
    await b.create(o.namespace("blog"), o.deployment("blog", "blog", {"app": "blog"}))
    await lab.discovery([a, b])
    await eventually(lambda: len(lab.of("app.discovered")) == 4, what="four apps")
    await a.kube.patch("v1", "Pod", "api-1", "shop", {"status": o.crash_status()}, status=True)
    await eventually(lambda: lab.of("app.changed", f"{a.id}.shop.api"), what="api Failed")

    page = await ask(lab, queries.QUERY_APPS, cluster=a.id, page_size=2)
    assert [x["name"] for x in page["apps"]] == ["api", "db"] and page["total"] == 3
    rest = await ask(
        lab, queries.QUERY_APPS, cluster=a.id, page_size=2, page_token=page["next_page_token"]
    )
    assert [x["name"] for x in rest["apps"]] == ["web"] and rest["next_page_token"] == ""
    red = await ask(lab, queries.QUERY_APPS, label="team=red")
    assert sorted(x["name"] for x in red["apps"]) == ["db", "web"]
    failed = await ask(lab, queries.QUERY_APPS, state="Failed")
    assert [x["name"] for x in failed["apps"]] == ["api"]
    blog = await ask(lab, queries.QUERY_APPS, namespace="blog")
    assert [(x["cluster"], x["name"]) for x in blog["apps"]] == [(b.id, "blog")]

    one = await ask(lab, queries.QUERY_APP, id=f"{a.id}.shop.api")
    assert one["app"]["state"] == "Failed"
    assert one["app"]["reasons"] == ["Pod api-1: container main in CrashLoopBackOff"]
    assert [r["name"] for r in one["app"]["resources"]] == ["api"]
    missing = await ask(lab, queries.QUERY_APP, id=f"{a.id}.shop.nope")
    assert missing == {"error": f"app '{a.id}.shop.nope' is not in the inventory"}

    clusters = await ask(lab, queries.QUERY_CLUSTERS)
    ours = [c for c in clusters["clusters"] if c["id"] in (a.id, b.id)]
    assert [(c["id"], c["state"]) for c in ours] == [(a.id, "Available"), (b.id, "Available")]
    assert all("token" not in json.dumps(c) for c in ours)

    bad = await ask(lab, queries.QUERY_APPS, page_size=0)
    assert bad["error"].startswith(f"invalid request on {queries.QUERY_APPS}: page_size: ")
    bad = await ask(lab, queries.QUERY_APPS, state="Sleeping")
    assert "state: Input should be 'Available', 'Failed' or 'Removed'" in bad["error"]
    bad = await ask(lab, queries.QUERY_APPS, page_token="%%%")
    assert bad == {"error": "page_token '%%%' is not one this service handed out"}
    bad = await ask(lab, queries.QUERY_APPS, label="=x")
    assert bad == {"error": "label filter '=x': expected key=value or key"}


def record(cluster: str, ns: str, name: str, **fields: Any) -> AppRecord:
    values: dict[str, Any] = {"grouping": "label", "state": "Available", **fields}
    return AppRecord(cluster=cluster, namespace=ns, name=name, **values)


def test_pages_cover_every_app_once_even_when_apps_come_and_go() -> None:
    apps = [record("c", "ns", f"app{i:02d}") for i in range(25)]
    seen: list[str] = []
    token = ""
    while True:
        page: AppPage = list_apps(apps, AppQuery(page_size=10, page_token=token))
        seen += [a.name for a in page.apps]
        if not page.next_page_token:
            break
        token = page.next_page_token
        apps = [a for a in apps if a.name != "app05"]  # removed between pages: no effect
    assert seen == [f"app{i:02d}" for i in range(25)]


def test_filters_combine_and_label_keys_alone_match() -> None:
    apps = [
        record("c1", "ns", "a", labels={"team": "red"}),
        record("c1", "ns", "b", selector={"app": "b"}),
        record("c2", "ns", "c", labels={"team": "blue"}, state="Failed"),
    ]
    names = [a.name for a in list_apps(apps, AppQuery(label="team")).apps]
    assert names == ["a", "c"]
    assert [a.name for a in list_apps(apps, AppQuery(label="app=b")).apps] == ["b"]
    assert list_apps(apps, AppQuery(cluster="c2", state="Available")).apps == []
    with pytest.raises(QueryError, match="expected key=value"):
        list_apps(apps, AppQuery(label=" "))
