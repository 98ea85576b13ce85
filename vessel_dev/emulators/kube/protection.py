"""Storage object in-use protection: the admission plugin and its two controllers.

New claims and PVs get the ``kubernetes.io/pvc-protection`` / ``pv-protection``
finalizers. A deleted claim keeps its finalizer while a non-terminated pod in its
namespace mounts it; a deleted PV keeps its finalizer while it is Bound.
"""

from __future__ import annotations

from vessel.kube.objects import KubeObject
from vessel_dev.emulators.kube.edits import drop_finalizer
from vessel_dev.emulators.kube.kinds import Kind, core
from vessel_dev.emulators.kube.objects import meta
from vessel_dev.emulators.kube.store import Store

PVC = core("persistentvolumeclaims")
PV = core("persistentvolumes")
PODS = core("pods")
PVC_PROTECTION = "kubernetes.io/pvc-protection"
PV_PROTECTION = "kubernetes.io/pv-protection"
_FINALIZER = {PVC: PVC_PROTECTION, PV: PV_PROTECTION}


def admit(kind: Kind, obj: KubeObject) -> None:
    finalizer = _FINALIZER.get(kind)
    if finalizer is not None:
        finalizers = obj["metadata"].setdefault("finalizers", [])
        if finalizer not in finalizers:
            finalizers.append(finalizer)


def sync_claim(store: Store, claim: KubeObject) -> None:
    if _releasable(claim, PVC_PROTECTION) and not _in_use(store, claim):
        metadata = meta(claim)
        store.patch(PVC, metadata["namespace"], metadata["name"], drop_finalizer(PVC_PROTECTION))


def sync_volume(store: Store, pv: KubeObject) -> None:
    if _releasable(pv, PV_PROTECTION) and pv.get("status", {}).get("phase") != "Bound":
        store.patch(PV, "", meta(pv)["name"], drop_finalizer(PV_PROTECTION))


def pod_changed(store: Store, pod: KubeObject) -> None:
    """A pod went away or finished: claims it held back may now be deleted."""
    namespace = meta(pod).get("namespace")
    for claim in list(store.iter(PVC, lambda c: meta(c).get("namespace") == namespace)):
        sync_claim(store, claim)


def _releasable(obj: KubeObject, finalizer: str) -> bool:
    metadata = meta(obj)
    return bool(metadata.get("deletionTimestamp")) and finalizer in (
        metadata.get("finalizers") or []
    )


def _in_use(store: Store, claim: KubeObject) -> bool:
    namespace, name = meta(claim)["namespace"], meta(claim)["name"]
    for pod in store.iter(PODS, lambda p: meta(p).get("namespace") == namespace):
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            continue
        for volume in pod.get("spec", {}).get("volumes") or []:
            if (volume.get("persistentVolumeClaim") or {}).get("claimName") == name:
                return True
    return False
