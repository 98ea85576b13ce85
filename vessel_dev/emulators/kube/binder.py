"""The PV controller's binding half, plus the admission defaults it relies on.

A PV whose ``spec.claimRef`` names an existing claim (with no ``spec.volumeName`` or
this PV's name) is bound: the PV gets ``claimRef.uid`` and phase Bound, the claim gets
``spec.volumeName``, the bind annotations and status Bound with the PV's capacity and
access modes. Deleting a bound claim marks its PV Released. Unclaimed PVs are never
matched to claims by size or class, and reclaim policies are not acted on (an external
provisioner deletes the PVs it provisioned, as in a real cluster).
"""

from __future__ import annotations

import copy

from vessel.kube.objects import KubeObject
from vessel_dev.emulators.kube.edits import edit, set_status
from vessel_dev.emulators.kube.kinds import Kind, core, named
from vessel_dev.emulators.kube.objects import meta
from vessel_dev.emulators.kube.store import Store

PVC = core("persistentvolumeclaims")
PV = core("persistentvolumes")
STORAGE_CLASS = named("storage.k8s.io", "storageclasses")
PROVISIONER_ANNOTATIONS = (
    "volume.kubernetes.io/storage-provisioner",
    "volume.beta.kubernetes.io/storage-provisioner",
)
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
SELECTED_NODE_ANNOTATION = "volume.kubernetes.io/selected-node"


def admit(store: Store, kind: Kind, obj: KubeObject) -> None:
    if kind is PV:
        # The real controller moves new PVs to Available with one more write.
        obj["status"] = {"phase": "Available"}
    elif kind is PVC and obj.get("spec", {}).get("storageClassName") is None:
        default = _default_storage_class(store)
        if default is not None:
            obj.setdefault("spec", {})["storageClassName"] = default


def _default_storage_class(store: Store) -> str | None:
    defaults = [
        sc
        for sc in store.iter(STORAGE_CLASS)
        if (meta(sc).get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true"
    ]
    # With several defaults the real admission plugin picks the newest one.
    defaults.sort(key=lambda sc: meta(sc).get("creationTimestamp", ""))
    return meta(defaults[-1])["name"] if defaults else None


def sync_volume(store: Store, pv: KubeObject) -> None:
    ref = pv.get("spec", {}).get("claimRef") or {}
    claim = store.find(PVC, ref.get("namespace") or "", ref.get("name") or "")
    if claim is not None:
        _bind(store, pv, claim)


def sync_claim(store: Store, claim: KubeObject) -> None:
    for pv in list(store.iter(PV, lambda pv: _claims(pv, claim))):
        _bind(store, pv, claim)
    claim = store.get(PVC, meta(claim)["namespace"], meta(claim)["name"])
    if not claim.get("spec", {}).get("volumeName"):
        _annotate_provisioner(store, claim)


def release(store: Store, claim: KubeObject) -> None:
    """The claim is gone: PVs bound to it become Released."""
    for pv in list(store.iter(PV, lambda pv: _claims(pv, claim))):
        if pv.get("status", {}).get("phase") == "Bound":
            change = edit(lambda o: set_status(o, phase="Released"))
            store.patch(PV, "", meta(pv)["name"], change, status_only=True)


def _claims(pv: KubeObject, claim: KubeObject) -> bool:
    ref = pv.get("spec", {}).get("claimRef") or {}
    where = (ref.get("namespace"), ref.get("name"))
    same = where == (meta(claim)["namespace"], meta(claim)["name"])
    return same and ref.get("uid") in (None, "", meta(claim)["uid"])


def _bind(store: Store, pv: KubeObject, claim: KubeObject) -> None:
    if not _claims(pv, claim) or meta(claim).get("deletionTimestamp"):
        return
    pv_name = meta(pv)["name"]
    volume_name = claim.get("spec", {}).get("volumeName")
    if volume_name not in (None, "", pv_name):
        return
    namespace, name, uid = meta(claim)["namespace"], meta(claim)["name"], meta(claim)["uid"]
    # The same four writes, in the same order, as the real controller.
    store.patch(PV, "", pv_name, edit(lambda o: o["spec"]["claimRef"].update(uid=uid)))
    store.patch(PV, "", pv_name, edit(lambda o: set_status(o, phase="Bound")), True)
    by_us = not volume_name
    store.patch(PVC, namespace, name, edit(lambda o: _claim_volume(o, pv_name, by_us)))
    # Copies: the claim must not share nested dicts with the stored PV.
    capacity = copy.deepcopy(pv.get("spec", {}).get("capacity"))
    modes = copy.deepcopy(pv.get("spec", {}).get("accessModes"))
    bound = edit(lambda o: set_status(o, phase="Bound", capacity=capacity, accessModes=modes))
    store.patch(PVC, namespace, name, bound, status_only=True)


def _claim_volume(claim: KubeObject, pv_name: str, bound_by_controller: bool) -> None:
    claim.setdefault("spec", {})["volumeName"] = pv_name
    annotations = claim["metadata"].setdefault("annotations", {})
    annotations["pv.kubernetes.io/bind-completed"] = "yes"
    if bound_by_controller:
        annotations["pv.kubernetes.io/bound-by-controller"] = "yes"


def _annotate_provisioner(store: Store, claim: KubeObject) -> None:
    """Hand a pending claim to its class's external provisioner, as the real controller does."""
    annotations = meta(claim).get("annotations") or {}
    class_name = claim.get("spec", {}).get("storageClassName")
    sc = store.find(STORAGE_CLASS, "", class_name) if class_name else None
    if sc is None or not sc.get("provisioner"):
        return
    waits = sc.get("volumeBindingMode") == "WaitForFirstConsumer"
    if waits and SELECTED_NODE_ANNOTATION not in annotations:
        return
    provisioner = sc["provisioner"]
    if all(annotations.get(a) == provisioner for a in PROVISIONER_ANNOTATIONS):
        return
    marks = dict.fromkeys(PROVISIONER_ANNOTATIONS, provisioner)
    change = edit(lambda o: o["metadata"].setdefault("annotations", {}).update(marks))
    store.patch(PVC, meta(claim)["namespace"], meta(claim)["name"], change)
