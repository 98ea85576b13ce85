"""End to end across all services: an app travels from cluster A to cluster B.

Real NATS, real S3, real btrfs (as root; the `dir` backend otherwise), every service its
own process; the Kubernetes API servers are emulated over HTTP (or real ones, one day).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.kit import app_known
from tests.support import IN_CI, require
from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc
from vessel.bus.nats_port import Bus
from vessel.contracts import subjects
from vessel.contracts.envelope import CloudEvent, new_event
from vessel.kube.client import KubeCluster
from vessel_dev.rig.btrfs import btrfs_available
from vessel_dev.rig.scenario import (
    APP,
    CLAIM,
    NAMESPACE,
    app_objects,
    bound_volume_path,
    create_all,
    tree_digest,
    write_data,
)
from vessel_dev.rig.stack import STORAGE_CLASS, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


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
            app = apps.GetApp(pb.GetAppRequest(id=app_id)) if app_known(apps, app_id) else None
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
    gateway = scrape(stack, "gateway")
    backups = (
        'grpc_server_handled_total{grpc_code="OK",grpc_method="CreateBackup",'
        'grpc_service="vessel.api.v1.BackupService",grpc_type="unary"}'
    )
    assert gateway[backups] >= 1
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


def test_every_services_metrics_pass_promtool(stack: Stack) -> None:
    """`promtool check metrics` (Prometheus's own linter) on what each service exposes,
    after the module's backup and restore filled its counters and histograms."""
    promtool = shutil.which("promtool")
    require(None if promtool else "promtool (Debian package prometheus) is not installed")
    assert promtool is not None
    assert len(stack.metrics) == 9  # three hub services, three agents per cluster
    for service, address in stack.metrics.items():
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as reply:
            text = reply.read()
        checked = subprocess.run(
            [promtool, "check", "metrics"], input=text, capture_output=True, timeout=30
        )
        problems = (checked.stdout + checked.stderr).decode()
        assert checked.returncode == 0 and not problems.strip(), f"{service}: {problems}"


async def test_each_claim_is_measured_where_kubelet_gives_hostpath_volumes_nothing(
    stack: Stack,
) -> None:
    """The app's claim in cluster A, scraped from its provisioner as Prometheus would."""

    def of_the_claim(samples: dict[str, float], name: str) -> list[float]:
        labels = ('cluster="cluster-a"', 'namespace="shop"', 'persistentvolumeclaim="shop-data"')
        return [
            value
            for key, value in samples.items()
            if key.startswith(name + "{") and all(label in key for label in labels)
        ]

    for _ in range(250):  # the provisioner measures every 15 s
        samples = scrape(stack, "provisioner-cluster-a")
        if of_the_claim(samples, "vessel_volume_used_bytes"):
            break
        await asyncio.sleep(0.1)
    [used] = of_the_claim(samples, "vessel_volume_used_bytes")
    assert used > 12 << 20, used  # the app's data is in it
    assert of_the_claim(samples, "vessel_volume_capacity_bytes") == [64 << 20]
