"""A cluster joining the running fleet with a token, as an agent-mode install does: the
hub admits its leaf NATS through its discovery (nats-server's authorization callout),
every verb works on it (backup, restore, snapshot, clone, migrate), and `cluster remove`
cuts it off for good. A leaf with a wrong
token never gets in.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.e2e.kit import finished, until_known, volumeless_app
from vessel.api.v1 import infra_pb2 as ipb
from vessel.api.v1 import infra_pb2_grpc as rpc_infra
from vessel.api.v1 import protection_pb2 as ppb
from vessel.api.v1 import protection_pb2_grpc as prpc
from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc
from vessel.kube.client import KubeCluster
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


def _clusters(channel: grpc.Channel) -> dict[str, Any]:
    listed = rpc_infra.ClusterServiceStub(channel).ListClusters(ipb.ListClustersRequest())
    return {c.id: c for c in listed.clusters}


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


async def test_a_cluster_joins_with_a_token_works_and_is_cut_off_when_removed(
    stack: Stack, tmp_path: Path
) -> None:
    edge = KubeEmulator()
    edge.start()
    agents = []
    try:
        edge.write_kubeconfig(tmp_path / "edge.kubeconfig", context="edge")
        kube = KubeCluster(tmp_path / "edge.kubeconfig", "edge")
        await create_all(kube, volumeless_app("notes", "joined by token"))
        with grpc.insecure_channel(stack.gateway) as channel:
            clusters = rpc_infra.ClusterServiceStub(channel)
            token = clusters.CreateJoinToken(ipb.CreateJoinTokenRequest(id="edge", ttl_seconds=600))
            assert token.cluster == "edge" and len(token.token) >= 32
            agents = stack.join("edge", tmp_path / "edge.kubeconfig", token.token)
            await asyncio.to_thread(
                wait_until, lambda: _leaves(stack) == len(CLUSTERS) + 1, 20, "edge's leaf at hub"
            )
            await asyncio.to_thread(
                wait_until, lambda: "edge" in _clusters(channel), 30, "edge's agent reported"
            )
            assert _clusters(channel)["edge"].source == "agent"

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
                    target_cluster=CLUSTERS[1],
                    namespace_mapping={"notes": "notes-from-edge"},
                )
            )
            done = await finished(ops, restore.id)
            assert done.phase == "Completed", done.message
            snapshot = prpc.SnapshotServiceStub(channel).CreateSnapshot(
                ppb.CreateSnapshotRequest(app_id="edge.notes.notes", bucket="default")
            )
            done = await finished(ops, snapshot.id)
            assert done.phase == "Completed", done.message
            clone = prpc.CloneServiceStub(channel).CreateClone(
                ppb.CreateCloneRequest(
                    app_id="edge.notes.notes",
                    snapshot_id=done.snapshot_id,
                    bucket="default",
                    target_cluster="edge",
                    namespace_mapping={"notes": "notes-clone"},
                )
            )
            done = await finished(ops, clone.id)
            assert done.phase == "Completed", done.message
            migration = prpc.MigrationServiceStub(channel).CreateMigration(
                ppb.CreateMigrationRequest(
                    app_id="edge.notes.notes",
                    bucket="default",
                    target_cluster=CLUSTERS[1],
                    namespace_mapping={"notes": "notes-moved"},
                )
            )
            done = await finished(ops, migration.id)
            assert done.phase == "Completed", done.message
            cloned = await kube.get("v1", "ConfigMap", "notes-config", "notes-clone")
            assert cloned is not None and cloned["data"] == {"motd": "joined by token"}
            source = await kube.get("apps/v1", "Deployment", "notes", "notes")
            assert source is not None and source["spec"]["replicas"] == 0  # moved away

            clusters.RemoveCluster(ipb.RemoveClusterRequest(id="edge"))
            await asyncio.to_thread(
                wait_until, lambda: _leaves(stack) == len(CLUSTERS), 20, "edge's leaf cut"
            )
            await asyncio.to_thread(
                wait_until, lambda: "edge" not in _clusters(channel), 20, "edge removed"
            )
            # Its leaf dials again and again with the same token: refused every time.
            refused = "NATS connection as 'edge' refused"
            await asyncio.to_thread(
                wait_until, lambda: refused in _hub_discovery_log(stack), 20, "edge refused"
            )
            assert _leaves(stack) == len(CLUSTERS) and "edge" not in _clusters(channel)
            with pytest.raises(grpc.RpcError) as gone:
                rpc.BackupServiceStub(channel).CreateBackup(
                    pb.CreateBackupRequest(app_id="edge.notes.notes", bucket="default")
                )
            assert gone.value.code() in (
                grpc.StatusCode.NOT_FOUND,
                grpc.StatusCode.INVALID_ARGUMENT,
            )
        restored = KubeCluster(stack.kubeconfigs[CLUSTERS[1]], CLUSTERS[1])
        for namespace in ("notes-from-edge", "notes-moved"):
            config = await restored.get("v1", "ConfigMap", "notes-config", namespace)
            assert config is not None and config["data"] == {"motd": "joined by token"}
    finally:
        for agent in agents:
            agent.stop()
            stack.services.remove(agent)
        if "edge" in stack.topology.leaves:
            stack.topology.leaves.pop("edge").stop()
        await asyncio.to_thread(edge.stop)
