"""The `KubeApi` conformance suite: the official client, and the same calls made through a
cluster agent over real NATS (protection's client asking discovery's responder), must
behave alike against one API server: results, idempotency and error classes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.discovery import agent
from services.protection.agents import AgentKube
from vessel.bus.nats_port import Bus
from vessel.contracts import queries
from vessel.contracts.agent import KubeAnswer, KubeCall
from vessel.kube import errors
from vessel.kube.client import KubeCluster
from vessel.kube.port import KubeApi
from vessel.stopping import cancel_and_wait
from vessel_dev.emulators.kube import KubeEmulator

pytestmark = pytest.mark.timeout(60)
NS = "default"


def config_map(name: str, labels: dict[str, str] | None = None) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NS, "labels": labels or {}},
        "data": {"k": "v"},
    }


@pytest.fixture(params=["client", "agent"])
async def api(
    request: pytest.FixtureRequest, kube_emulator: tuple[KubeEmulator, Path], bus: Bus
) -> AsyncIterator[KubeApi]:
    direct = KubeCluster(kube_emulator[1], "conformance")
    if request.param == "client":
        yield direct
        return
    cluster = f"c{uuid.uuid4().hex[:8]}"
    serving = await agent.serve(bus, cluster, direct)
    try:
        yield AgentKube(bus, cluster)
    finally:
        await cancel_and_wait([serving])


async def test_get_create_and_create_again(api: KubeApi) -> None:
    assert await api.get("v1", "ConfigMap", "absent", NS) is None
    created = await api.create(config_map("one"))
    assert created["metadata"]["resourceVersion"]
    got = await api.get("v1", "ConfigMap", "one", NS)
    assert got is not None and got["data"] == {"k": "v"}
    with pytest.raises(errors.AlreadyExists):
        await api.create(config_map("one"))


async def test_list_by_label_and_an_unknown_kind(api: KubeApi) -> None:
    await api.create(config_map("red", {"colour": "red"}))
    await api.create(config_map("blue", {"colour": "blue"}))
    items, version = await api.list("v1", "ConfigMap", NS, label_selector="colour=red")
    assert [i["metadata"]["name"] for i in items] == ["red"] and version
    with pytest.raises(errors.NotFound):
        await api.list("example.com/v1", "Nothing", NS)


async def test_replace_is_guarded_by_resource_version(api: KubeApi) -> None:
    created = await api.create(config_map("guarded"))
    fresh = {**created, "data": {"k": "new"}}
    replaced = await api.replace(fresh)
    assert replaced["data"] == {"k": "new"}
    with pytest.raises(errors.Conflict):
        await api.replace({**created, "data": {"k": "stale"}})  # the old resourceVersion


async def test_patch_merges_and_delete_is_idempotent(api: KubeApi) -> None:
    await api.create(config_map("patched"))
    patched = await api.patch("v1", "ConfigMap", "patched", NS, {"data": {"extra": "1"}})
    assert patched["data"] == {"k": "v", "extra": "1"}
    await api.delete("v1", "ConfigMap", "patched", NS)
    await api.delete("v1", "ConfigMap", "patched", NS)
    assert await api.get("v1", "ConfigMap", "patched", NS) is None


async def test_exec_results_and_errors(api: KubeApi) -> None:
    await api.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "db", "namespace": NS},
            "spec": {"containers": [{"name": "main", "image": "busybox"}]},
        }
    )
    ran = await api.exec(NS, "db", "main", ["sh", "-c", "echo out; echo err >&2; exit 3"], 10)
    assert (ran.exit_code, ran.stdout, ran.stderr) == (3, "out\n", "err\n")
    with pytest.raises(errors.NotFound):
        await api.exec(NS, "nopod", "main", ["true"], 10)
    with pytest.raises(errors.BadRequest):
        await api.exec(NS, "db", "nocontainer", ["true"], 10)
    with pytest.raises(errors.ExecTimeout):
        await api.exec(NS, "db", "main", ["sleep", "5"], 0.5)


# --- what only the agent path has -------------------------------------------------------


async def test_a_cluster_without_an_agent_is_unreachable_and_says_so(bus: Bus) -> None:
    away = AgentKube(
        bus, f"c{uuid.uuid4().hex[:8]}", await bus.kv(f"clusters-{uuid.uuid4().hex[:6]}")
    )
    with pytest.raises(errors.Unreachable, match="no agent answers; it is not registered"):
        await away.get("v1", "ConfigMap", "x", NS)


async def test_the_agent_refuses_a_malformed_call_naming_it(
    kube_emulator: tuple[KubeEmulator, Path], bus: Bus
) -> None:
    cluster = f"c{uuid.uuid4().hex[:8]}"
    serving = await agent.serve(bus, cluster, KubeCluster(kube_emulator[1], cluster))
    try:
        body = await bus.request(queries.agent_subject(cluster, "get"), b'{"verb": "get"}')
        answer = KubeAnswer.model_validate_json(body)
        assert answer.error_class == "BadRequest"
        assert "a get call needs api_version, kind, name" in answer.error
        call = KubeCall(verb="delete", api_version="v1", kind="ConfigMap", name="x")
        body = await bus.request(
            queries.agent_subject(cluster, "get"), call.model_dump_json().encode()
        )
        assert "'delete' is not the subject's 'get'" in KubeAnswer.model_validate_json(body).error
    finally:
        serving.cancel()


async def test_an_answer_too_large_for_the_bus_is_an_error_not_silence(
    kube_emulator: tuple[KubeEmulator, Path], bus: Bus
) -> None:
    direct = KubeCluster(kube_emulator[1], "big")
    for i in range(4):
        await direct.create({**config_map(f"big-{i}"), "data": {"k": "x" * 400_000}})
    cluster = f"c{uuid.uuid4().hex[:8]}"
    serving = await agent.serve(bus, cluster, direct)
    try:
        with pytest.raises(errors.KubeError, match="more than the bus carries in one message"):
            await AgentKube(bus, cluster).list("v1", "ConfigMap", NS)
        got = await AgentKube(bus, cluster).get("v1", "ConfigMap", "big-0", NS)
        assert got is not None and len(got["data"]["k"]) == 400_000
    finally:
        serving.cancel()


async def test_a_call_its_agent_died_with_is_sent_once_more_but_not_an_exec(
    bus: Bus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first agent receives the call and dies without answering; the one started
    again answers. An exec is never sent twice: a hook must not run twice."""
    from services.protection import agents

    monkeypatch.setattr(agents, "CALL_SECONDS", 0.5)
    cluster = f"c{uuid.uuid4().hex[:8]}"
    received: list[str] = []

    async def dies_on_the_first(subject: str, body: bytes) -> bytes:
        verb = KubeCall.model_validate_json(body).verb
        received.append(verb)
        if received.count(verb) == 1:
            raise RuntimeError("killed")  # the requester gets no answer
        return KubeAnswer(object=config_map("one")).model_dump_json().encode()

    serving = await bus.serve(queries.agent_subject(cluster, "create"), dies_on_the_first)
    try:
        created = await AgentKube(bus, cluster).create(config_map("one"))
    finally:
        await cancel_and_wait([serving])
    assert created["metadata"]["name"] == "one" and received == ["create", "create"]

    serving = await bus.serve(queries.agent_subject(cluster, "exec"), dies_on_the_first)
    try:
        with pytest.raises(errors.Unreachable, match="did not answer a exec"):
            await AgentKube(bus, cluster).exec(NS, "pod", "main", ["true"], timeout=0.1)
    finally:
        await cancel_and_wait([serving])
    assert received.count("exec") == 1
