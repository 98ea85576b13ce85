"""End to end across all services: an app travels from cluster A to cluster B.

Real NATS, real S3, real btrfs (as root; the `dir` backend otherwise), every service its
own process; the Kubernetes API servers are emulated over HTTP (or real ones, one day).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from prometheus_client.parser import text_string_to_metric_families

from tests.support import IN_CI, full_stack, require
from vessel.api.v1 import infra_pb2 as ipb
from vessel.api.v1 import infra_pb2_grpc as rpc_infra
from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc
from vessel.bus.nats_port import Bus
from vessel.contracts import subjects
from vessel.contracts.envelope import CloudEvent, new_event
from vessel.kube.client import KubeCluster
from vessel_dev.emulators.kube import KubeEmulator
from vessel_dev.rig.btrfs import btrfs_available
from vessel_dev.rig.processes import NatsServer, wait_until
from vessel_dev.rig.scenario import (
    APP,
    CLAIM,
    NAMESPACE,
    app_objects,
    bound_volume_path,
    create_all,
    deployment_object,
    tree_digest,
    write_data,
)
from vessel_dev.rig.stack import AGENT_WAIT_SECONDS, STORAGE_CLASS, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with full_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture
async def bus(stack: Stack) -> Any:
    bus = Bus(source="/clusters/test/e2e")
    await bus.connect(stack.nats.url, name="e2e")
    yield bus
    await bus.close()


def clusters(stack: Stack) -> tuple[KubeCluster, KubeCluster]:
    return (
        KubeCluster(stack.kubeconfigs["cluster-a"], "cluster-a"),
        KubeCluster(stack.kubeconfigs["cluster-b"], "cluster-b"),
    )


async def events_until(
    bus: Bus, since: datetime, last_type: str, within: float = 60
) -> list[CloudEvent]:
    seen: list[CloudEvent] = []
    async with asyncio.timeout(within):
        async for _, event in bus.tail(since=since):
            seen.append(event)
            if event.type == last_type:
                return seen
    return seen


async def test_app_travels_from_cluster_a_to_cluster_b(stack: Stack, bus: Bus) -> None:
    since = datetime.now(UTC)
    a, b = clusters(stack)
    for kube in (a, b):
        await kube.create(stack.storage_class())
    await create_all(a, app_objects())
    source = await bound_volume_path(a, NAMESPACE, CLAIM)
    if IN_CI:
        assert stack.backend_types["cluster-a"] == "btrfs"
    write_data(source)
    before = tree_digest(source)
    app_id = f"cluster-a.{NAMESPACE}.{APP}"

    with grpc.insecure_channel(stack.gateway) as channel:
        apps = rpc.AppServiceStub(channel)
        for _ in range(100):
            app = apps.GetApp(pb.GetAppRequest(id=app_id)) if _app_known(apps, app_id) else None
            if app is not None and app.claims and app.claims[0].volume_name:
                break
            await asyncio.sleep(0.1)
        assert app is not None and [w.name for w in app.workloads] == ["shop-db"]
        backup = rpc.BackupServiceStub(channel).CreateBackup(
            pb.CreateBackupRequest(app_id=app_id, bucket="default", request_id="e2e")
        )
        again = rpc.BackupServiceStub(channel).CreateBackup(
            pb.CreateBackupRequest(app_id=app_id, bucket="default", request_id="e2e")
        )
        assert again.id == backup.id == "backup-e2e"
        ops = rpc.OperationServiceStub(channel)
        done = await asyncio.to_thread(
            ops.WaitOperation, pb.WaitOperationRequest(id=backup.id, timeout_seconds=60)
        )
        assert done.phase == "Completed", done.message
        assert stack.store().exists("backups/backup-e2e/backup.json")
        restore = rpc.RestoreServiceStub(channel).CreateRestore(
            pb.CreateRestoreRequest(
                backup_id=backup.id,
                bucket="default",
                target_cluster="cluster-b",
                namespace_mapping={NAMESPACE: "shop-copy"},
            )
        )
        done = await asyncio.to_thread(
            ops.WaitOperation, pb.WaitOperationRequest(id=restore.id, timeout_seconds=60)
        )
        assert done.phase == "Completed", done.message

    target = await bound_volume_path(b, "shop-copy", CLAIM)
    assert tree_digest(target) == before
    assert await b.get("apps/v1", "Deployment", "shop-db", "shop-copy") is not None
    config = await b.get("v1", "ConfigMap", "shop-config", "shop-copy")
    assert config is not None and config["data"] == {"greeting": "hello from cluster a"}

    events = await events_until(bus, since, subjects.RESTORE_COMPLETED.type)
    order = [
        (subjects.VOLUME_PROVISIONED.type, "cluster-a"),
        (subjects.APP_DISCOVERED.type, "cluster-a"),
        (subjects.BACKUP_STARTED.type, None),
        (subjects.TRANSFER_COMPLETED.type, "cluster-a"),
        (subjects.BACKUP_COMPLETED.type, None),
        (subjects.RESTORE_STARTED.type, None),
        (subjects.VOLUME_PROVISIONED.type, "cluster-b"),
        (subjects.TRANSFER_COMPLETED.type, "cluster-b"),
        (subjects.RESTORE_COMPLETED.type, None),
    ]
    position = 0
    for event in events:
        wanted_type, wanted_cluster = order[position]
        cluster = event.data.get("cluster") or event.data.get("app", {}).get("cluster")
        if event.type == wanted_type and wanted_cluster in (None, cluster):
            position += 1
            if position == len(order):
                break
    assert position == len(order), f"missing {order[position]} in {[e.type for e in events]}"
    progress = [e.data for e in events if e.type == subjects.TRANSFER_PROGRESS.type]
    assert {p["direction"] for p in progress} == {"backup", "restore"}
    restored = [p for p in progress if p["direction"] == "restore"]
    assert restored[-1]["bytes"] == restored[-1]["total_bytes"] > 12 << 20
    mover = scrape(stack, "mover-cluster-a")
    assert mover['vessel_mover_transfers_total{direction="backup",result="completed"}'] >= 1
    assert mover['vessel_mover_transfer_bytes_total{direction="backup"}'] > 12 << 20
    protection = scrape(stack, "protection")
    assert protection['vessel_protection_operations_total{kind="restore",phase="Completed"}'] >= 1
    acked = f'vessel_bus_messages_total{{outcome="acked",type="{subjects.CREATE_BACKUP.type}"}}'
    assert protection[acked] >= 1
    free = scrape(stack, "provisioner-cluster-a")[
        'vessel_backend_free_bytes{backend="cluster-a-local"}'
    ]
    assert free > 0
    reconciled = scrape(stack, "provisioner-cluster-b")
    assert reconciled['vessel_provisioner_reconciles_total{kind="claim",result="ok"}'] >= 1
    traced = [e for e in events if e.type == subjects.BACKUP_COMPLETED.type]
    assert traced and traced[0].traceparent


def scrape(stack: Stack, service: str) -> dict[str, float]:
    """The service's Prometheus samples, `name{labels sorted}` -> value."""
    with urllib.request.urlopen(f"http://{stack.metrics[service]}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def _app_known(apps: Any, app_id: str) -> bool:
    return any(a.id == app_id for a in apps.ListApps(pb.ListAppsRequest()).apps)


def volumeless_app(name: str, motd: str) -> list[dict[str, Any]]:
    """An app without claims (namespace `name`): a ConfigMap and a Deployment."""
    labels = {"app": name}
    config = {"name": f"{name}-config", "namespace": name, "labels": labels}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": config, "data": {"motd": motd}},
        deployment_object(name, name, labels, {"name": "web", "image": "nginx"}, {}),
    ]


async def until_known(apps: Any, app_id: str) -> None:
    for _ in range(300):
        if _app_known(apps, app_id):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{app_id} was not discovered within 30 s")


async def finished(ops: Any, op_id: str) -> Any:
    """The operation once it ended (or after 90 s)."""
    request = pb.WaitOperationRequest(id=op_id, timeout_seconds=90)
    return await asyncio.to_thread(ops.WaitOperation, request)


async def test_invalid_command_is_dead_lettered_and_the_mover_survives(
    stack: Stack, bus: Bus
) -> None:
    since = datetime.now(UTC)
    event = new_event(subjects.MOVE_TO_BUCKET.type, "/test", {"transfer_id": "x"}, None, None)
    await bus.publish_raw(subjects.MOVE_TO_BUCKET.subject_for("cluster-a"), event)
    async with asyncio.timeout(20):
        async for _, seen in bus.tail(subjects.DEAD_LETTERED.subject, since=since):
            if seen.data["message_id"] == event.id:
                assert "operation_id: Field required" in seen.data["error"]
                break
    assert all(p.alive() for p in stack.services)


@pytest.mark.parametrize(
    ("storage_class", "size", "reason", "text"),
    [
        (
            "no-such-class",
            "1Gi",
            "ProvisioningFailed",
            'storageclass.storage.k8s.io "no-such-class" not found',
        ),
        (STORAGE_CLASS, "100Gi", "ProvisioningFailed", "can hold 107374182400 bytes"),
        (STORAGE_CLASS, "12 apples", "InvalidSize", "spec.resources.requests.storage"),
    ],
)
async def test_unprovisionable_claims_stay_pending_with_an_event(
    stack: Stack,
    storage_class: str,
    size: str,
    reason: str,
    text: str,
) -> None:
    a, _ = clusters(stack)
    if await a.get("storage.k8s.io/v1", "StorageClass", STORAGE_CLASS) is None:
        await a.create(stack.storage_class())
    name = f"bad-{uuid.uuid4().hex[:8]}"
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": storage_class,
            "resources": {"requests": {"storage": size}},
        },
    }
    try:
        await a.create(claim)
    except Exception as exc:  # a real API server rejects a malformed quantity itself
        assert size == "12 apples", exc
        return
    for _ in range(100):
        events, _ = await a.list("v1", "Event", "default")
        mine = [e for e in events if e["involvedObject"]["name"] == name]
        if mine:
            break
        await asyncio.sleep(0.1)
    assert mine and mine[0]["reason"] == reason and text in mine[0]["message"]
    current = await a.get("v1", "PersistentVolumeClaim", name, "default")
    assert current is not None and current["status"]["phase"] == "Pending"


def _violations(error: grpc.RpcError) -> dict[str, str]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    found: dict[str, str] = {}
    for detail in status.details if status else []:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            found.update({v.field: v.description for v in bad.field_violations})
    return found


def test_api_errors_name_what_is_wrong(stack: Stack) -> None:
    with grpc.insecure_channel(stack.gateway) as channel:
        backups = rpc.BackupServiceStub(channel)
        with pytest.raises(grpc.RpcError) as missing:
            backups.CreateBackup(
                pb.CreateBackupRequest(app_id="cluster-a.nowhere.ghost", bucket="default")
            )
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        assert "cluster-a.nowhere.ghost" in missing.value.details()
        with pytest.raises(grpc.RpcError) as bad:
            backups.CreateBackup(pb.CreateBackupRequest(app_id="Not An Id", bucket="nope"))
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert set(_violations(bad.value)) == {"app_id", "bucket"}
        with pytest.raises(grpc.RpcError) as bad_restore:
            rpc.RestoreServiceStub(channel).CreateRestore(
                pb.CreateRestoreRequest(
                    backup_id="b1",
                    bucket="default",
                    target_cluster="cluster-z",
                    namespace_mapping={"shop": "Shop_Copy"},
                )
            )
        assert bad_restore.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        violations = _violations(bad_restore.value)
        assert set(violations) == {"target_cluster", "namespace_mapping[shop]"}
        with pytest.raises(grpc.RpcError) as unknown_op:
            rpc.OperationServiceStub(channel).GetOperation(pb.GetOperationRequest(id="backup-nope"))
        assert unknown_op.value.code() == grpc.StatusCode.NOT_FOUND


def test_backend_volume_is_real(stack: Stack) -> None:
    """Under CI the first cluster's volumes live on a loop-mounted btrfs filesystem."""
    if stack.backend_types["cluster-a"] != "btrfs":
        require("btrfs unavailable: " + str(btrfs_available()))
    mount = Path(stack.filesystems[0].mountpoint)
    assert Path("/proc/mounts").read_text().count(f" {mount} btrfs ") == 1


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
