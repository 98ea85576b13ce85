"""A cluster joining the running fleet with a token, as an agent-mode install does: the
hub admits its leaf NATS through its discovery (nats-server's authorization callout),
every verb works on it through the CLI (backup, restore, snapshot, clone, migrate), and
`cluster remove` cuts it off for good. A leaf with a wrong token never gets in.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.e2e.kit import volumeless_app
from vessel.api.v1 import infra_pb2 as ipb
from vessel.api.v1 import infra_pb2_grpc as rpc_infra
from vessel.kube.client import KubeCluster
from vessel_cli.main import main as cli
from vessel_dev.emulators.kube import KubeEmulator
from vessel_dev.rig.processes import wait_until
from vessel_dev.rig.scenario import create_all
from vessel_dev.rig.stack import CLUSTERS, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def _leaves(stack: Stack) -> int:
    with urllib.request.urlopen(f"{stack.nats.monitor_url}/leafz", timeout=5) as reply:
        return int(json.load(reply)["leafnodes"])


def _hub_discovery_log(stack: Stack) -> str:
    return (stack.workdir / "discovery.log").read_text(errors="replace")


def _docs(out: str) -> list[dict[str, Any]]:
    """What `-o json` printed: one document alone, several as a list."""
    found = json.loads(out)
    return found if isinstance(found, list) else [found]


def test_a_leaf_with_a_wrong_token_is_refused(stack: Stack) -> None:
    with grpc.insecure_channel(stack.gateway) as channel:
        clusters = rpc_infra.ClusterServiceStub(channel)
        clusters.CreateJoinToken(ipb.CreateJoinTokenRequest(id="intruder"))
        leaf = stack.topology.join("intruder", "not-the-token")
        try:
            refused = "NATS connection as 'intruder' refused: no cluster 'intruder' joins"
            wait_until(lambda: refused in _hub_discovery_log(stack), 20, "the callout's refusal")
            assert _leaves(stack) == len(CLUSTERS)
        finally:
            leaf.stop()
        with pytest.raises(grpc.RpcError) as bad:
            clusters.CreateJoinToken(ipb.CreateJoinTokenRequest(id="Not_A_Label"))
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "id" in str(bad.value.details())
        with pytest.raises(grpc.RpcError) as taken:
            clusters.CreateJoinToken(ipb.CreateJoinTokenRequest(id=CLUSTERS[0]))
        assert taken.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert f"cluster {CLUSTERS[0]} is already registered" in str(taken.value.details())


@pytest.fixture
def run(stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    """`await run(*argv)`: the `vessel` CLI against the stack's gateway; (code, out, err)."""
    monkeypatch.setenv("VESSEL_ENDPOINT", stack.gateway)
    monkeypatch.delenv("VESSEL_TOKEN", raising=False)

    async def run(*argv: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(cli, list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


Run = Callable[..., Awaitable[tuple[int, str, str]]]


async def test_the_tour_on_a_cluster_joined_with_a_token_then_removed(
    stack: Stack, tmp_path: Path, run: Run
) -> None:
    """README, "Add a cluster" then the CLI tour, on a cluster that joins with a token:
    every verb works on it (backup, restore, snapshot, clone, migrate), and `cluster
    remove` cuts it off for good."""
    edge = KubeEmulator()
    edge.start()
    agents = []
    try:
        edge.write_kubeconfig(tmp_path / "edge.kubeconfig", context="edge")
        kube = KubeCluster(tmp_path / "edge.kubeconfig", "edge")
        await create_all(kube, volumeless_app("notes", "joined by token"))
        code, out, err = await run("-o", "json", "cluster", "join-token", "edge")
        assert code == 0, err
        token = json.loads(out)
        assert token["cluster"] == "edge" and len(token["token"]) >= 32
        assert "nats-leaf://edge:TOKEN@HUB:7422" in err  # how to use it, said once
        agents = stack.join("edge", tmp_path / "edge.kubeconfig", token["token"])
        await asyncio.to_thread(
            wait_until, lambda: _leaves(stack) == len(CLUSTERS) + 1, 20, "edge's leaf at hub"
        )

        async def listed() -> dict[str, Any]:
            code, out, err = await run("-o", "json", "cluster", "list")
            assert code == 0, err
            return {c["id"]: c for c in _docs(out)}

        async def app_known() -> bool:
            code, out, _ = await run("-o", "json", "app", "list")
            return code == 0 and any(a["id"] == "edge.notes.notes" for a in _docs(out))

        await until(app_known, "edge's app discovered")
        assert (await listed())["edge"]["source"] == "agent"

        async def wait_ok(*argv: str) -> dict[str, Any]:
            code, out, err = await run("-o", "json", *argv, "--wait", "--timeout", "120")
            assert code == 0, err
            done = json.loads(out)
            assert done["phase"] == "Completed", done
            return dict(done)

        backup = await wait_ok("backup", "create", "edge.notes.notes", "--bucket", "default")
        await wait_ok(
            "restore", backup["backup_id"] or backup["id"], "--bucket", "default",
            "--to-cluster", CLUSTERS[1], "--namespace-map", "notes:notes-from-edge",
        )  # fmt: skip
        snapshot = await wait_ok("snapshot", "create", "edge.notes.notes", "--bucket", "default")
        await wait_ok(
            "clone", "edge.notes.notes", "--from-snapshot", snapshot["snapshot_id"],
            "--to-cluster", "edge", "--namespace-map", "notes:notes-clone", "--bucket", "default",
        )  # fmt: skip
        await wait_ok(
            "migrate", "edge.notes.notes", "--to-cluster", CLUSTERS[1], "--bucket", "default",
            "--namespace-map", "notes:notes-moved",
        )  # fmt: skip
        cloned = await kube.get("v1", "ConfigMap", "notes-config", "notes-clone")
        assert cloned is not None and cloned["data"] == {"motd": "joined by token"}
        source = await kube.get("apps/v1", "Deployment", "notes", "notes")
        assert source is not None and source["spec"]["replicas"] == 0  # moved away
        restored = KubeCluster(stack.kubeconfigs[CLUSTERS[1]], CLUSTERS[1])
        for namespace in ("notes-from-edge", "notes-moved"):
            config = await restored.get("v1", "ConfigMap", "notes-config", namespace)
            assert config is not None and config["data"] == {"motd": "joined by token"}

        code, _, err = await run("cluster", "remove", "edge")
        assert code == 0, err
        await asyncio.to_thread(
            wait_until, lambda: _leaves(stack) == len(CLUSTERS), 20, "edge's leaf cut"
        )

        async def gone() -> bool:
            return "edge" not in await listed()

        await until(gone, "edge removed")
        # Its leaf dials again and again with the same token: refused every time.
        refused = "NATS connection as 'edge' refused"
        await asyncio.to_thread(
            wait_until, lambda: refused in _hub_discovery_log(stack), 20, "edge refused"
        )
        assert _leaves(stack) == len(CLUSTERS) and await gone()
        code, _, err = await run("backup", "create", "edge.notes.notes", "--bucket", "default")
        assert code != 0 and "edge" in err
    finally:
        for agent in agents:
            agent.stop()
            stack.services.remove(agent)
        if "edge" in stack.topology.leaves:
            stack.topology.leaves.pop("edge").stop()
        await asyncio.to_thread(edge.stop)


async def until(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 30) -> None:
    for _ in range(int(seconds / 0.2)):
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")
