"""The Kubernetes API emulator's controllers, auth, discovery, CLI and throughput."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kubernetes import client, config, dynamic
from kubernetes.client import ApiClient

from tests.emulators.support import (
    NS,
    REPO_ROOT,
    deployment,
    error_of,
    pv,
    pvc,
    running,
    watch_events,
)

pytestmark = pytest.mark.timeout(30)


# Emulated controllers


def test_pv_binder_binds_and_releases(api: ApiClient) -> None:
    core, storage = client.CoreV1Api(api), client.StorageV1Api(api)
    storage.create_storage_class(
        {
            "metadata": {
                "name": "vessel",
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": "vessel.io/csi",
        }
    )
    claim = core.create_namespaced_persistent_volume_claim(NS, pvc("data", storage_class=None))
    assert claim.status.phase == "Pending"
    assert claim.spec.storage_class_name == "vessel"
    claim = core.read_namespaced_persistent_volume_claim("data", NS)
    assert claim.metadata.annotations["volume.kubernetes.io/storage-provisioner"] == (
        "vessel.io/csi"
    )
    start = claim.metadata.resource_version
    volume = core.create_persistent_volume(pv("pv-1", claim_ref=("default", "data")))
    assert volume.status.phase == "Available"
    bound_pv = core.read_persistent_volume("pv-1")
    bound = core.read_namespaced_persistent_volume_claim("data", NS)
    assert bound_pv.status.phase == "Bound"
    assert bound_pv.spec.claim_ref.uid == claim.metadata.uid
    assert bound.spec.volume_name == "pv-1"
    assert bound.status.phase == "Bound"
    assert bound.status.capacity == {"storage": "5Gi"}
    assert bound.status.access_modes == ["ReadWriteOnce"]
    events = watch_events(
        core.list_namespaced_persistent_volume_claim, NS, resource_version=start, timeout_seconds=1
    )
    assert [kind for kind, _ in events] == ["MODIFIED", "MODIFIED"]
    assert events[-1][1]["status"]["phase"] == "Bound"
    core.delete_namespaced_persistent_volume_claim("data", NS)
    assert core.read_persistent_volume("pv-1").status.phase == "Released"


def test_pv_binder_binds_a_claim_created_after_its_volume(core: client.CoreV1Api) -> None:
    core.create_persistent_volume(pv("pv-2", claim_ref=(NS, "late")))
    assert core.read_persistent_volume("pv-2").status.phase == "Available"
    core.create_namespaced_persistent_volume_claim(NS, pvc("late"))
    assert core.read_namespaced_persistent_volume_claim("late", NS).status.phase == "Bound"
    core.create_namespaced_persistent_volume_claim(NS, pvc("taken", volume_name="elsewhere"))
    core.create_persistent_volume(pv("pv-3", claim_ref=(NS, "taken")))
    assert core.read_persistent_volume("pv-3").status.phase == "Available"


def test_workloads_report_ready(api: ApiClient) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(NS, deployment("web", replicas=3))
    status = apps.read_namespaced_deployment("web", NS).status
    assert (status.replicas, status.ready_replicas, status.available_replicas) == (3, 3, 3)
    assert status.observed_generation == 1
    apps.patch_namespaced_deployment("web", NS, {"spec": {"replicas": 0}})
    status = apps.read_namespaced_deployment("web", NS).status
    assert (status.replicas, status.ready_replicas, status.observed_generation) == (0, 0, 2)
    apps.create_namespaced_stateful_set(
        NS,
        {
            "metadata": {"name": "db"},
            "spec": {
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": {
                    "metadata": {"labels": {"app": "db"}},
                    "spec": {"containers": [{"name": "db", "image": "db:1"}]},
                },
            },
        },
    )
    sts = apps.read_namespaced_stateful_set("db", NS).status
    assert (sts.replicas, sts.ready_replicas) == (1, 1)


def test_storage_protection_finalizers(core: client.CoreV1Api) -> None:
    core.create_namespaced_persistent_volume_claim(NS, pvc("data"))
    core.create_persistent_volume(pv("pv-1", claim_ref=(NS, "data")))
    volume = core.read_persistent_volume("pv-1")
    assert volume.metadata.finalizers == ["kubernetes.io/pv-protection"]
    core.create_namespaced_pod(
        NS,
        {
            "metadata": {"name": "user"},
            "spec": {
                "containers": [{"name": "c", "image": "busybox"}],
                "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "data"}}],
            },
        },
    )
    core.delete_persistent_volume("pv-1")
    core.delete_namespaced_persistent_volume_claim("data", NS)
    claim = core.read_namespaced_persistent_volume_claim("data", NS)
    assert claim.metadata.deletion_timestamp is not None
    assert claim.metadata.finalizers == ["kubernetes.io/pvc-protection"]
    assert core.read_persistent_volume("pv-1").status.phase == "Bound"
    core.delete_namespaced_pod("user", NS)
    code, _ = error_of(lambda: core.read_namespaced_persistent_volume_claim("data", NS))
    assert code == 404
    code, _ = error_of(lambda: core.read_persistent_volume("pv-1"))
    assert code == 404


def test_controllers_can_be_disabled(tmp_path: Path) -> None:
    with running(tmp_path, controllers=False) as (_, api):
        core = client.CoreV1Api(api)
        core.create_namespaced_persistent_volume_claim(NS, pvc("data"))
        core.create_persistent_volume(pv("pv-1", claim_ref=(NS, "data")))
        assert core.read_namespaced_persistent_volume_claim("data", NS).status.phase == ("Pending")
        client.AppsV1Api(api).create_namespaced_deployment(NS, deployment("web"))
        assert client.AppsV1Api(api).read_namespaced_deployment("web", NS).status is None


# Auth, discovery, CLI, throughput


def test_wrong_token_is_unauthorized(tmp_path: Path) -> None:
    with running(tmp_path, token="right") as (emulator, _):
        kubeconfig = tmp_path / "bad-kubeconfig"
        emulator.write_kubeconfig(kubeconfig, context="bad")
        document = json.loads(kubeconfig.read_text())
        assert document["current-context"] == "bad"
        document["users"][0]["user"]["token"] = "wrong"
        kubeconfig.write_text(json.dumps(document))
        with config.new_client_from_config(config_file=str(kubeconfig)) as api:
            code, body = error_of(lambda: client.CoreV1Api(api).list_namespace())
        assert code == 401
        assert body == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Unauthorized",
            "reason": "Unauthorized",
            "code": 401,
        }


def test_dynamic_client_discovery(api: ApiClient, tmp_path: Path) -> None:
    dyn = dynamic.DynamicClient(api, cache_file=str(tmp_path / "discovery.json"))
    assert dyn.version["kubernetes"]["major"] == "1"
    snapshots = dyn.resources.get(api_version="snapshot.storage.k8s.io/v1", kind="VolumeSnapshot")
    assert snapshots.namespaced and snapshots.name == "volumesnapshots"
    snapshots.create(
        namespace=NS,
        body={
            "apiVersion": "snapshot.storage.k8s.io/v1",
            "kind": "VolumeSnapshot",
            "metadata": {"name": "snap"},
            "spec": {"source": {"persistentVolumeClaimName": "data"}},
        },
    )
    fetched = snapshots.get(name="snap", namespace=NS)
    assert fetched.spec.source.persistentVolumeClaimName == "data"
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    deployments.create(
        namespace=NS, body=dict(deployment("web"), apiVersion="apps/v1", kind="Deployment")
    )
    listed = deployments.get(namespace=NS)
    assert [item.metadata.name for item in listed.items] == ["web"]
    pvs = dyn.resources.get(api_version="v1", kind="PersistentVolume")
    assert not pvs.namespaced
    assert "status" in pvs.subresources
    kinds = {r.kind for r in dyn.resources.search(api_version="rbac.authorization.k8s.io/v1")}
    assert {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"} <= kinds


def test_cli_runs_until_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "cli-kubeconfig"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vessel_dev.emulators.kube",
            "--port",
            "0",
            "--kubeconfig",
            str(kubeconfig),
            "--context",
            "cli",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while not kubeconfig.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert json.loads(kubeconfig.read_text())["current-context"] == "cli"
        with config.new_client_from_config(config_file=str(kubeconfig)) as api:
            names_ = [n.metadata.name for n in client.CoreV1Api(api).list_namespace().items]
        assert names_ == ["default", "kube-public", "kube-system"]
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert b"kube emulator serving https://127.0.0.1:" in out
