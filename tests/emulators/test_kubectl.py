"""The real kubectl against the emulator: HTTPS with the kubeconfig's CA, Table output,
describe with events, client-side apply, delete and watch.

kubectl is required in CI (see ``tests/support.require``); elsewhere a missing binary
skips. Both kubectl 1.32 and Debian's 1.20 are expected to pass.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.request
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.client import ApiClient

from tests.emulators.kubectl import Kubectl, rows
from tests.emulators.support import NS, deployment, pv, pvc
from vessel_dev.emulators.kube import KubeEmulator

pytestmark = pytest.mark.timeout(120)
Emulated = tuple[KubeEmulator, ApiClient]

MANIFEST = """\
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
  namespace: shop
  labels: {app: shop}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 2Gi}}
"""


@pytest.fixture
def kubectl(emulated: Emulated, tmp_path: Path) -> Kubectl:
    return Kubectl(emulated[0], tmp_path)


def _claim_event(core: client.CoreV1Api, claim: client.V1PersistentVolumeClaim, n: int) -> None:
    meta = claim.metadata
    involved = {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "uid": meta.uid}
    involved |= {"name": meta.name, "namespace": meta.namespace}
    event = {
        "metadata": {"name": f"{meta.name}.{n}"},
        "involvedObject": involved,
        "reason": f"Reason{n}",
        "message": f"message number {n} about {meta.name}",
        "type": "Normal",
        "source": {"component": "vessel-test"},
        "count": 1,
    }
    core.create_namespaced_event(meta.namespace, event)


def test_the_kubeconfig_carries_the_ca_and_verification_stays_on(
    emulated: Emulated, tmp_path: Path
) -> None:
    emulator, _ = emulated
    assert emulator.url.startswith("https://127.0.0.1:")
    emulator.write_kubeconfig(tmp_path / "config")
    cluster = json.loads((tmp_path / "config").read_text())["clusters"][0]["cluster"]
    assert cluster["server"] == emulator.url
    ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
    assert ca == emulator.ca_pem and ca.startswith("-----BEGIN CERTIFICATE-----")
    with pytest.raises(urllib.error.URLError) as refused:
        urllib.request.urlopen(f"{emulator.url}/healthz", timeout=5)
    assert isinstance(refused.value.reason, ssl.SSLCertVerificationError)
    trusted = emulator.client_ssl_context()
    with urllib.request.urlopen(f"{emulator.url}/healthz", timeout=5, context=trusted) as reply:
        assert reply.read() == b"ok"
    # A plain-HTTP emulator stays available for code that opts out explicitly.
    plain = KubeEmulator(tls=False)
    try:
        assert plain.start().startswith("http://") and plain.client_ssl_context() is None
    finally:
        plain.stop()


def test_get_across_namespaces_prints_the_server_columns(api: ApiClient, kubectl: Kubectl) -> None:
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "shop"}})
    core.create_persistent_volume(pv("pv-data", ("shop", "data")))
    core.create_namespaced_persistent_volume_claim("shop", pvc("data"))
    core.create_namespaced_persistent_volume_claim(NS, pvc("loose", storage_class=None))
    claims = {(r["NAMESPACE"], r["NAME"]): r for r in rows(kubectl("get", "pvc", "-A"))}
    assert set(claims) == {("shop", "data"), (NS, "loose")}
    bound = claims["shop", "data"]
    assert (bound["STATUS"], bound["VOLUME"], bound["CAPACITY"]) == ("Bound", "pv-data", "5Gi")
    assert (bound["ACCESS MODES"], bound["STORAGECLASS"]) == ("RWO", "vessel")
    assert bound["AGE"].endswith("s")
    loose = claims[NS, "loose"]
    assert (loose["STATUS"], loose["VOLUME"], loose["STORAGECLASS"]) == ("Pending", "", "<unset>")
    [volume] = rows(kubectl("get", "pv"))
    assert (volume["NAME"], volume["CLAIM"], volume["STATUS"]) == ("pv-data", "shop/data", "Bound")
    assert volume["RECLAIM POLICY"] == "Delete"
    wide = rows(kubectl("get", "pvc", "-n", "shop", "-o", "wide"))
    assert wide[0]["VOLUMEMODE"] == "<unset>"
    assert kubectl("get", "pvc", "-n", "kube-public") == ""
    assert kubectl.stderr.strip() == "No resources found in kube-public namespace."


def test_get_prints_the_columns_of_other_kinds(api: ApiClient, kubectl: Kubectl) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    client.StorageV1Api(api).create_storage_class(
        {
            "metadata": {
                "name": "vessel",
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": "vessel.io/csi",
            "volumeBindingMode": "WaitForFirstConsumer",
        }
    )
    apps.create_namespaced_deployment(NS, deployment("web", replicas=2))
    core.create_namespaced_pod(NS, {"metadata": {"name": "p"}, "spec": {"containers": []}})
    snapshots = client.CustomObjectsApi(api)
    snapshot = {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshot",
        "metadata": {"name": "snap"},
        "spec": {"source": {"persistentVolumeClaimName": "data"}},
    }
    snapshots.create_namespaced_custom_object(
        "snapshot.storage.k8s.io", "v1", NS, "volumesnapshots", snapshot
    )
    [sc] = rows(kubectl("get", "storageclass"))
    assert sc == {
        "NAME": "vessel (default)",
        "PROVISIONER": "vessel.io/csi",
        "RECLAIMPOLICY": "Delete",
        "VOLUMEBINDINGMODE": "WaitForFirstConsumer",
        "ALLOWVOLUMEEXPANSION": "false",
        "AGE": sc["AGE"],
    }
    [deploy] = rows(kubectl("get", "deployments"))
    assert (deploy["NAME"], deploy["READY"], deploy["UP-TO-DATE"]) == ("web", "2/2", "2")
    [pod] = rows(kubectl("get", "pods"))
    assert (pod["NAME"], pod["READY"], pod["STATUS"], pod["RESTARTS"]) == (
        "p",
        "0/0",
        "Pending",
        "0",
    )
    [vs] = rows(kubectl("get", "volumesnapshots"))
    assert (vs["NAME"], vs["SOURCEPVC"]) == ("snap", "data")
    namespaces = {r["NAME"]: r["STATUS"] for r in rows(kubectl("get", "namespaces"))}
    assert namespaces == {"default": "Active", "kube-public": "Active", "kube-system": "Active"}
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_cluster_role({"metadata": {"name": "reader"}, "rules": []})
    [role] = rows(kubectl("get", "clusterroles"))  # no printer of its own: Name and Age
    assert list(role) == ["NAME", "AGE"] and role["NAME"] == "reader"


def test_describe_and_get_events(api: ApiClient, kubectl: Kubectl) -> None:
    core = client.CoreV1Api(api)
    claim = core.create_namespaced_persistent_volume_claim(NS, pvc("data"))
    other = core.create_namespaced_persistent_volume_claim(NS, pvc("other"))
    _claim_event(core, claim, 1)
    _claim_event(core, other, 2)
    described = kubectl("describe", "pvc", "data")
    assert "Name:          data" in described and "Status:        Pending" in described
    assert "Reason1" in described and "message number 1 about data" in described
    assert "Reason2" not in described  # events are selected by involvedObject
    events = {r["REASON"]: r for r in rows(kubectl("get", "events"))}
    assert set(events) == {"Reason1", "Reason2"}
    assert events["Reason1"]["OBJECT"] == "persistentvolumeclaim/data"
    assert events["Reason1"]["TYPE"] == "Normal"
    assert events["Reason2"]["MESSAGE"] == "message number 2 about other"


def test_apply_twice_reapply_changed_then_delete(
    api: ApiClient, kubectl: Kubectl, tmp_path: Path
) -> None:
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "shop"}})
    manifest = tmp_path / "claim.yaml"
    manifest.write_text(MANIFEST)
    assert kubectl("apply", "-f", str(manifest)).strip() == "persistentvolumeclaim/data created"
    assert kubectl("apply", "-f", str(manifest)).strip() == "persistentvolumeclaim/data unchanged"
    manifest.write_text(MANIFEST.replace("{app: shop}", "{app: shop, tier: db}"))
    assert kubectl("apply", "-f", str(manifest)).strip() == "persistentvolumeclaim/data configured"
    stored = core.read_namespaced_persistent_volume_claim("data", "shop")
    assert stored.metadata.labels == {"app": "shop", "tier": "db"}
    as_yaml = yaml.safe_load(kubectl("get", "pvc", "data", "-n", "shop", "-o", "yaml"))
    assert as_yaml["kind"] == "PersistentVolumeClaim"
    assert as_yaml["metadata"]["uid"] == stored.metadata.uid
    applied = as_yaml["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    assert json.loads(applied)["metadata"]["labels"] == {"app": "shop", "tier": "db"}
    as_json = json.loads(kubectl("get", "pvc", "-n", "shop", "-o", "json"))
    assert [i["spec"]["resources"]["requests"]["storage"] for i in as_json["items"]] == ["2Gi"]
    deleted = kubectl("delete", "-f", str(manifest))
    assert deleted.strip() == 'persistentvolumeclaim "data" deleted'
    assert core.list_namespaced_persistent_volume_claim("shop").items == []
    missing = kubectl("get", "pvc", "data", "-n", "shop", ok=False)
    assert 'persistentvolumeclaims "data" not found' in missing


def test_get_watch_sees_a_change(api: ApiClient, kubectl: Kubectl) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_persistent_volume_claim(NS, pvc("data"))
    with kubectl.streaming("get", "pvc", "--watch", "--request-timeout=60s") as until:
        assert until(lambda line: line.split()[:2] == ["NAME", "STATUS"])
        assert until(lambda line: line.split()[:2] == ["data", "Pending"])
        core.create_persistent_volume(pv("pv-data", (NS, "data")))
        bound = until(lambda line: line.split()[:2] == ["data", "Bound"])
        assert bound.split()[2:5] == ["pv-data", "5Gi", "RWO"]
        core.delete_namespaced_persistent_volume_claim("data", NS)
        # Held by its protection finalizer for a moment: a Terminating row, then gone.
        assert until(lambda line: line.split()[:2] == ["data", "Terminating"])
