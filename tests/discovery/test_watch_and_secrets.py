"""Watches resume after a dropped connection and relist after 410 Gone; nothing secret
ever reaches KV, events or logs."""

from __future__ import annotations

import asyncio
import logging
import stat
import uuid
from datetime import UTC, datetime
from functools import partial

import pytest

from tests.discovery import objects as o
from tests.discovery.kubeproxy import kubeconfig_text
from tests.discovery.lab import Lab, eventually
from vessel.contracts import subjects
from vessel.contracts.commands import RegisterCluster
from vessel.contracts.envelope import new_event
from vessel.stopping import cancel_and_wait

pytestmark = pytest.mark.timeout(60)
IMAGE_PATCH = {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "web:2"}]}}}}


async def test_a_dropped_watch_resumes_from_its_resource_version(lab: Lab) -> None:
    c = await lab.cluster("drop", proxy=True)
    assert c.proxy is not None
    await c.create(o.namespace("shop"), o.deployment("web", "shop", {"app": "web"}))
    await lab.discovery([c])
    app_id = f"{c.id}.shop.web"
    await eventually(lambda: lab.of("app.discovered", app_id), what="discovered")
    lists, watches = dict(c.proxy.lists), c.proxy.watches["deployments"]
    await c.proxy.sever()
    await c.kube.patch("apps/v1", "Deployment", "web", "shop", IMAGE_PATCH)
    [changed] = await eventually(lambda: lab.of("app.changed", app_id), what="the change")
    assert changed["diff"]["changed"] == {"Deployment/web": "images nginx:1.25 -> web:2"}
    assert dict(c.proxy.lists) == lists  # nothing listed again
    assert c.proxy.watches["deployments"] > watches  # the watch was opened again


async def test_an_expired_watch_relists_and_reports_what_changed_meanwhile(
    lab: Lab, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="vessel.discovery")
    c = await lab.cluster("gone", proxy=True, history=20)
    assert c.proxy is not None
    await c.create(
        o.namespace("shop"),
        o.namespace("noise"),
        o.deployment("web", "shop", {"app": "web"}),
        o.deployment("old", "shop", {"app": "old"}),
        o.simple("ConfigMap", "churn", "noise"),
    )
    await lab.discovery([c])
    for name in ("web", "old"):
        await eventually(partial(lab.of, "app.discovered", f"{c.id}.shop.{name}"), what=name)
    lists = c.proxy.lists["deployments"]
    await c.proxy.down()
    await c.kube.patch("apps/v1", "Deployment", "web", "shop", IMAGE_PATCH)
    await c.kube.delete("apps/v1", "Deployment", "old", "shop")
    await c.create(o.deployment("new", "shop", {"app": "new"}))
    for i in range(30):  # more changes than the server's history keeps
        await c.kube.patch("v1", "ConfigMap", "churn", "noise", {"data": {"i": str(i)}})
    await c.proxy.up()
    await eventually(lambda: lab.of("app.changed", f"{c.id}.shop.web"), what="web changed")
    await eventually(lambda: lab.of("app.removed", f"{c.id}.shop.old"), what="old removed")
    await eventually(lambda: lab.of("app.discovered", f"{c.id}.shop.new"), what="new found")
    assert c.proxy.lists["deployments"] == lists + 1
    assert "Deployment watch expired at" in caplog.text


async def test_nothing_secret_reaches_kv_events_or_logs(
    lab: Lab, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    c = await lab.cluster("vault")
    data_value, helm_value = f"data-{uuid.uuid4().hex}", f"values-{uuid.uuid4().hex}"
    await c.create(
        o.namespace("shop"),
        o.deployment("web", "shop", {"app": "web"}),
        o.secret("creds", "shop", {"password": data_value}, {"app": "web"}),
        o.helm_release("web", "shop", 1, values={"password": helm_value}),
    )
    await lab.discovery()
    broken = f"users:\n- name: u\n  user:\n    token: {c.token}\n  bad: [\n"
    wrong = f"wrong-{uuid.uuid4().hex}"
    commands = {
        c.id: kubeconfig_text(c.emulator.url, c.token, ca=c.emulator.ca_pem),
        f"{lab.prefix}-broken": broken,
        f"{lab.prefix}-wrong": kubeconfig_text(c.emulator.url, wrong, ca=c.emulator.ca_pem),
    }
    for cid, text in commands.items():
        await lab.bus.publish(
            subjects.REGISTER_CLUSTER,
            RegisterCluster(operation_id=uuid.uuid4().hex, cluster=cid, kubeconfig=text),
        )
    await eventually(lambda: lab.app(f"{c.id}.shop.web"), what="the app")
    await eventually(lambda: lab.of("cluster.unreachable", f"{lab.prefix}-wrong"), what="401")
    await eventually(lambda: lab.of("cluster.unreachable", f"{lab.prefix}-broken"), what="yaml")
    stored = lab.tmp / "state" / "clusters" / f"{c.id}.kubeconfig"
    assert c.token in stored.read_text()  # the one place it is kept
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert not (lab.tmp / "state" / "clusters" / f"{lab.prefix}-broken.kubeconfig").exists()
    secrets = [c.token, wrong, data_value, helm_value]
    kv = b"\n".join(await lab.values())
    events = "\n".join(e.model_dump_json() for e in lab.events)
    for secret in secrets:
        assert secret.encode() not in kv, secret
        assert secret not in events, secret
        assert secret not in caplog.text, secret
    assert "not valid YAML at line" in events  # the condition still says what is wrong


async def test_a_malformed_register_command_is_dead_lettered_without_its_kubeconfig(
    lab: Lab,
) -> None:
    await lab.discovery()
    token = f"tok-{uuid.uuid4().hex}"
    data = {
        "operation_id": "bad",
        "cluster": "Not A Cluster Id",  # fails validation: the command is dead-lettered
        "kubeconfig": kubeconfig_text("https://k:6443", token),
    }
    event = new_event(subjects.REGISTER_CLUSTER.type, "/clusters/test/tests", data, None, None)
    letters: list[str] = []
    since = datetime.now(UTC)

    async def watch() -> None:
        async for _, letter in lab.bus.tail("vessel.evt.system.>", since=since):
            letters.append(letter.model_dump_json())

    task = asyncio.create_task(watch())
    try:
        await lab.bus.publish_raw(subjects.REGISTER_CLUSTER.subject_for(), event)
        await eventually(lambda: [x for x in letters if event.id in x], what="the dead letter")
    finally:
        await cancel_and_wait([task])
    [letter] = [x for x in letters if event.id in x]
    assert "cluster: String should match pattern" in letter and "<redacted>" in letter
    assert token not in letter
