"""End to end in the fleet layout the embedded stack runs: a hub, and per cluster a leaf
NATS and the cluster's own agents. Every service is its own NATS user; a cluster
registered at run time gets a hub-side agent; no hub process holds a cluster's
credentials; an agent killed, and the hub's NATS restarted, leave nothing hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from tests.e2e.kit import finished, until_known, volumeless_app
from vessel.api.v1 import infra_pb2 as ipb
from vessel.api.v1 import infra_pb2_grpc as rpc_infra
from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc
from vessel.kube.client import KubeCluster
from vessel_dev.emulators.kube import KubeEmulator
from vessel_dev.rig.processes import NatsServer, wait_until
from vessel_dev.rig.scenario import create_all
from vessel_dev.rig.stack import AGENT_WAIT_SECONDS, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def _monitor(url: str, path: str) -> Any:
    with urllib.request.urlopen(f"{url}/{path}", timeout=5) as reply:
        return json.load(reply)


def _services(url: str) -> list[tuple[str, str]]:
    connections = _monitor(url, "connz?auth=1")["connections"]
    found = [(c.get("name", ""), c.get("authorized_user")) for c in connections]
    return sorted((name, user) for name, user in found if name.startswith("vessel-"))


def test_every_service_is_its_own_nats_user_and_clusters_are_leaf_nodes(stack: Stack) -> None:
    """The hub runs the hub services and JetStream; each cluster's agents (discovery,
    provisioner, mover) connect to that cluster's leaf node, which dials the hub as the
    cluster's user. Every service is its own NATS user (tests without credentials are the
    hub's admin)."""
    hub = [(f"vessel-{s}", s) for s in ("discovery", "gateway", "protection")]
    assert _services(stack.nats.monitor_url) == hub
    leafz = _monitor(stack.nats.monitor_url, "leafz")
    assert leafz["leafnodes"] == len(stack.topology.leaves) == 2
    for leaf in stack.topology.leaves.values():
        agents = [(f"vessel-{s}", s) for s in ("discovery", "mover", "provisioner")]
        assert _services(leaf.monitor_url) == agents


async def test_a_cluster_registered_at_run_time_is_protected_through_its_agent(
    stack: Stack, tmp_path: Path
) -> None:
    """`vessel cluster register` reaches discovery alone, which watches the cluster and is
    its agent: protection, which holds no kubeconfig of it, backs its app up and restores
    it there, every Kubernetes call going through the agent over NATS."""
    edge = KubeEmulator()
    edge.start()
    try:
        edge.write_kubeconfig(tmp_path / "edge.kubeconfig")
        kube = KubeCluster(tmp_path / "edge.kubeconfig", "edge")
        await create_all(kube, volumeless_app("notes", "registered at run time"))
        assert "edge" not in stack.hub_config_path.read_text()  # nor does protection know it
        with grpc.insecure_channel(stack.gateway) as channel:
            rpc_infra.ClusterServiceStub(channel).RegisterCluster(
                ipb.RegisterClusterRequest(
                    id="edge", kubeconfig=(tmp_path / "edge.kubeconfig").read_text()
                )
            )
            ops = rpc.OperationServiceStub(channel)
            await until_known(rpc.AppServiceStub(channel), "edge.notes.notes")
            backup = rpc.BackupServiceStub(channel).CreateBackup(
                pb.CreateBackupRequest(app_id="edge.notes.notes", bucket="default")
            )
            done = await finished(ops, backup.id)
            assert done.phase == "Completed", done.message
            restore = rpc.RestoreServiceStub(channel).CreateRestore(
                pb.CreateRestoreRequest(
                    backup_id=backup.id,
                    bucket="default",
                    target_cluster="edge",
                    namespace_mapping={"notes": "notes-copy"},
                )
            )
            done = await finished(ops, restore.id)
            assert done.phase == "Completed", done.message
        config = await kube.get("v1", "ConfigMap", "notes-config", "notes-copy")
        assert config is not None and config["data"] == {"motd": "registered at run time"}
        assert await kube.get("apps/v1", "Deployment", "notes", "notes-copy") is not None
    finally:
        await asyncio.to_thread(edge.stop)


def _open_files(pid: int) -> set[str]:
    """What the process's descriptors point at now (one closed meanwhile is skipped)."""
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            found.add(os.readlink(fd))
    return found


def _sockets_to(pid: int, port: int) -> int:
    """How many of the process's TCP sockets are connected to `port` on this host."""
    inodes = {t[8:-1] for t in _open_files(pid) if t.startswith("socket:[")}
    found = 0
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[9] in inodes:
                found += 1
    return found


def test_no_hub_process_holds_a_clusters_credentials(stack: Stack) -> None:
    """Both clusters run their own agent: the hub's services are configured with no
    cluster, open no kubeconfig and hold no connection to an API server, while each
    cluster's agent does."""
    hub_config = yaml.safe_load(stack.hub_config_path.read_text())
    assert hub_config["clusters"] == []
    kubeconfigs = {str(p) for p in stack.kubeconfigs.values()}
    ports = [int(e.url.rsplit(":", 1)[1]) for e in stack.clusters.values()]
    by_name = {p.name: p for p in stack.services}
    for name in ("discovery", "protection", "gateway"):
        pid = by_name[name].popen.pid
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert f"VESSEL_CONFIG={stack.hub_config_path}".encode() in environ, name
        assert not _open_files(pid) & kubeconfigs, name
        assert sum(_sockets_to(pid, port) for port in ports) == 0, name
    for cluster, port in zip(stack.clusters, ports, strict=True):
        agent = by_name[f"discovery-{cluster}"].popen.pid
        assert _sockets_to(agent, port) > 0, f"the agent of {cluster} watches its cluster"


async def test_an_agent_killed_is_waited_for_and_one_away_fails_the_backup_clearly(
    stack: Stack,
) -> None:
    """cluster-a's agent killed (SIGKILL) as a backup starts and back a few seconds later:
    the backup waits for it and completes. Killed for good: the backup fails within the
    wait, naming the cluster and the missing agent; it never stays InProgress."""
    kube = KubeCluster(stack.kubeconfigs["cluster-a"], "cluster-a")
    await create_all(kube, volumeless_app("away", "waits for its agent"))
    agent = next(p for p in stack.services if p.name == "discovery-cluster-a")
    assert agent.popen is not None
    with grpc.insecure_channel(stack.gateway) as channel:
        apps, ops = rpc.AppServiceStub(channel), rpc.OperationServiceStub(channel)
        backups = rpc.BackupServiceStub(channel)
        await until_known(apps, "cluster-a.away.away")
        request = pb.CreateBackupRequest(app_id="cluster-a.away.away", bucket="default")

        os.killpg(agent.popen.pid, signal.SIGKILL)
        agent.popen.wait()
        waited = backups.CreateBackup(request)
        await asyncio.sleep(2.0)
        agent.start()
        done = await finished(ops, waited.id)
        assert done.phase == "Completed", done.message

        assert agent.popen is not None
        os.killpg(agent.popen.pid, signal.SIGKILL)
        agent.popen.wait()
        try:
            started = time.monotonic()
            lost = backups.CreateBackup(request)
            done = await finished(ops, lost.id)
            assert done.phase == "Failed", (done.phase, done.message)
            assert "cluster cluster-a: no agent answers" in done.message, done.message
            assert time.monotonic() - started < AGENT_WAIT_SECONDS + 30
        finally:
            agent.start()


async def test_after_the_hubs_nats_restarts_the_leaves_and_agents_carry_on(
    stack: Stack,
) -> None:
    """The hub's nats-server stopped and started again (its JetStream on disk): every
    cluster's leaf dials in again, the agents' events cross it, and a backup of an app
    created after the restart completes."""
    if not isinstance(stack.nats, NatsServer) or not stack.topology.leaves:
        pytest.skip("the hub is a container server: no leaf nodes to follow it")
    stack.nats.stop()
    await asyncio.sleep(1.0)
    stack.nats.start()
    await asyncio.to_thread(
        wait_until, lambda: stack.topology.leaf_connections() == 2, 30, "both leaves back"
    )
    kube = KubeCluster(stack.kubeconfigs["cluster-b"], "cluster-b")
    await create_all(kube, volumeless_app("later", "made after the restart"))
    with grpc.insecure_channel(stack.gateway) as channel:
        await until_known(rpc.AppServiceStub(channel), "cluster-b.later.later")
        backup = rpc.BackupServiceStub(channel).CreateBackup(
            pb.CreateBackupRequest(app_id="cluster-b.later.later", bucket="default")
        )
        done = await finished(rpc.OperationServiceStub(channel), backup.id)
    assert done.phase == "Completed", done.message
    assert all(p.alive() for p in stack.services), [p.name for p in stack.services if not p.alive()]
