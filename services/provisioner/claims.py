"""Pure decisions about claims: is it ours, what does it ask for, what PV answers it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from vessel.config import PROVISIONER_NAME
from vessel.kube.client import quantity_bytes
from vessel.kube.objects import ClaimView, KubeObject, StorageClassView

SUPPORTED_ACCESS_MODES = {"ReadWriteOnce", "ReadWriteOncePod", "ReadOnlyMany"}
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
"""Marks the default StorageClass (`StorageClassView.is_default` reads it)."""
IMPORT_ANNOTATION = "vessel.io/import-volume"
POOL_ANNOTATION = "vessel.io/pool"
SNAPSHOT_GROUP = "snapshot.storage.k8s.io"


class ClaimRejected(Exception):
    """The claim cannot be provisioned as asked; `reason` is a Kubernetes Event reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ClaimRequest:
    namespace: str
    name: str
    uid: str
    size_bytes: int
    size_text: str
    access_modes: list[str]
    volume_mode: str
    storage_class: KubeObject

    @property
    def volume_id(self) -> str:
        return f"pvc-{self.uid}"


def needs_volume(claim: KubeObject) -> bool:
    return (
        not ClaimView(claim).volume_name
        and (claim.get("status", {}).get("phase", "Pending") == "Pending")
        and not claim["metadata"].get("deletionTimestamp")
    )


def pick_class(claim: KubeObject, classes: list[KubeObject]) -> KubeObject | None:
    """The claim's StorageClass, or the default class when it names none."""
    wanted = ClaimView(claim).storage_class
    for sc in classes:
        view = StorageClassView(sc)
        if wanted is not None and view.name == wanted:
            return sc
        if wanted is None and view.is_default:
            return sc
    if wanted is None:
        return None
    raise ClaimRejected("ProvisioningFailed", f'storageclass.storage.k8s.io "{wanted}" not found')


def parse_claim(claim: KubeObject, storage_class: KubeObject) -> ClaimRequest:
    view = ClaimView(claim)
    size_text = view.requested_storage or ""
    try:
        size = quantity_bytes(size_text)
    except ValueError as exc:
        raise ClaimRejected(
            "InvalidSize", f"spec.resources.requests.storage {size_text!r}: {exc}"
        ) from exc
    if size <= 0:
        raise ClaimRejected("InvalidSize", "spec.resources.requests.storage must be positive")
    modes = view.access_modes or ["ReadWriteOnce"]
    unsupported = sorted(set(modes) - SUPPORTED_ACCESS_MODES)
    if unsupported:
        raise ClaimRejected(
            "UnsupportedAccessMode",
            f"access modes {', '.join(unsupported)} need shared storage; local backends offer "
            f"{', '.join(sorted(SUPPORTED_ACCESS_MODES))}",
        )
    return ClaimRequest(
        view.namespace,
        view.name,
        view.uid,
        size,
        size_text,
        modes,
        view.spec.get("volumeMode") or "Filesystem",
        storage_class,
    )


def is_ours(storage_class: KubeObject) -> bool:
    return StorageClassView(storage_class).provisioner == PROVISIONER_NAME


def persistent_volume(
    req: ClaimRequest,
    cluster: str,
    backend: str,
    path: str,
    pool: str = "default",
    *,
    node: str | None = None,
) -> KubeObject:
    """The PV of a provisioned claim; with `node`, pods using it must run on that node."""
    storage_class = StorageClassView(req.storage_class)
    pv: KubeObject = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": req.volume_id,
            "labels": {"vessel.io/cluster": cluster, "vessel.io/backend": backend},
            "annotations": {
                "pv.kubernetes.io/provisioned-by": PROVISIONER_NAME,
                "vessel.io/volume-id": req.volume_id,
                POOL_ANNOTATION: pool,
            },
        },
        "spec": {
            "capacity": {"storage": req.size_text},
            "accessModes": req.access_modes,
            "volumeMode": req.volume_mode,
            "persistentVolumeReclaimPolicy": storage_class.reclaim_policy,
            "storageClassName": storage_class.name,
            "claimRef": {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "namespace": req.namespace,
                "name": req.name,
                "uid": req.uid,
            },
            "hostPath": {"path": path, "type": "Directory"},
        },
    }
    if node:
        term = {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}
        pv["spec"]["nodeAffinity"] = {
            "required": {"nodeSelectorTerms": [{"matchExpressions": [term]}]}
        }
    return pv


@dataclass(frozen=True)
class DataSource:
    kind: Literal["PersistentVolumeClaim", "VolumeSnapshot"]
    name: str
    namespace: str = ""
    """`dataSourceRef.namespace` when another than the claim's (see grants); else empty."""


def data_source(claim: KubeObject) -> DataSource | None:
    """What the claim is to be cloned from (`dataSourceRef`, else `dataSource`), if anything."""
    spec = claim.get("spec", {})
    ref = spec.get("dataSourceRef") or spec.get("dataSource")
    if not ref:
        return None
    kind, group, name = ref.get("kind"), ref.get("apiGroup") or "", ref.get("name") or ""
    what = f"dataSource {group + '/' if group else ''}{kind} {name!r}"
    namespace = str(ref.get("namespace") or "")
    if namespace == claim["metadata"]["namespace"]:
        namespace = ""
    elif namespace and ref is not spec.get("dataSourceRef"):
        raise ClaimRejected(
            "InvalidDataSource",
            f"{what} is in namespace {namespace}: only dataSourceRef may name another namespace",
        )
    if not name:
        raise ClaimRejected("InvalidDataSource", f"{what} names no object")
    if kind == "PersistentVolumeClaim" and not group:
        return DataSource("PersistentVolumeClaim", name, namespace)
    if kind == "VolumeSnapshot" and group == SNAPSHOT_GROUP:
        return DataSource("VolumeSnapshot", name, namespace)
    raise ClaimRejected(
        "InvalidDataSource",
        f"{what} is not supported: use a PersistentVolumeClaim or a {SNAPSHOT_GROUP} "
        "VolumeSnapshot",
    )


def import_source(claim: KubeObject) -> tuple[str, str] | None:
    """(backend, path relative to its root) the claim asks to adopt, if it asks."""
    text = (claim["metadata"].get("annotations") or {}).get(IMPORT_ANNOTATION)
    if text is None:
        return None
    backend, _, path = text.strip().partition("/")
    parts = PurePosixPath(path).parts
    if not backend or not path or path.startswith("/") or ".." in parts or not parts:
        raise ClaimRejected(
            "ImportFailed",
            f"annotation {IMPORT_ANNOTATION} {text!r} is not '<backend>/<path>' with a path "
            "inside the backend (relative, without '..')",
        )
    if data_source(claim) is not None:
        raise ClaimRejected(
            "ImportFailed", f"annotation {IMPORT_ANNOTATION} and a dataSource exclude each other"
        )
    return backend, str(PurePosixPath(*parts))
