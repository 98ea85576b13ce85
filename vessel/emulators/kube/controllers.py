"""What kube-controller-manager and admission would do, so client code paths are the real ones.

* PV binder: a PV whose ``spec.claimRef`` names an existing claim (with no
  ``spec.volumeName`` or this PV's name) is bound: the PV gets ``claimRef.uid`` and phase
  Bound, the claim gets ``spec.volumeName``, the bind annotations and status Bound with
  the PV's capacity and access modes. Deleting a bound claim marks its PV Released.
  Unclaimed PVs are never matched to claims by size/class, and reclaim policies are not
  acted on (an external provisioner deletes PVs it provisioned, as in a real cluster).
* A pending unbound claim whose StorageClass has a provisioner gets the
  ``volume.kubernetes.io/storage-provisioner`` annotations (not before a
  ``volume.kubernetes.io/selected-node`` annotation for WaitForFirstConsumer classes).
* New PVs start Available (the real controller gets there with one extra write).
* Claims without ``storageClassName`` get the default StorageClass (admission plugin).
* Deployments, StatefulSets and ReplicaSets report all desired replicas ready.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vessel.emulators.kube.history import DELETED, Event
from vessel.emulators.kube.kinds import Kind, core, named
from vessel.emulators.kube.objects import meta
from vessel.emulators.kube.store import Store

Obj = dict[str, Any]

PVC = core("persistentvolumeclaims")
PV = core("persistentvolumes")
STORAGE_CLASS = named("storage.k8s.io", "storageclasses")
WORKLOADS = (
    named("apps", "deployments"),
    named("apps", "statefulsets"),
    named("apps", "replicasets"),
)
PROVISIONER_ANNOTATIONS = (
    "volume.kubernetes.io/storage-provisioner",
    "volume.beta.kubernetes.io/storage-provisioner",
)
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
SELECTED_NODE_ANNOTATION = "volume.kubernetes.io/selected-node"


def install(store: Store) -> None:
    store.add_admission(lambda kind, obj: _admit(store, kind, obj))
    store.add_hook(lambda event: _dispatch(store, event))


def _admit(store: Store, kind: Kind, obj: Obj) -> None:
    if kind is PV:
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
    # With several defaults the real plugin picks the newest one.
    defaults.sort(key=lambda sc: meta(sc).get("creationTimestamp", ""))
    return meta(defaults[-1])["name"] if defaults else None


def _dispatch(store: Store, event: Event) -> None:
    if event.type == DELETED:
        if event.kind is PVC and event.prev is not None:
            _release(store, event.prev)
        return
    # Hooks run after the request's writes, so the event's object may be stale.
    current = _current(store, event)
    if current is None:
        return
    if event.kind is PV:
        _sync_volume(store, current)
    elif event.kind is PVC:
        _sync_claim(store, current)
    elif event.kind in WORKLOADS:
        _sync_workload(store, event.kind, current)


def _current(store: Store, event: Event) -> Obj | None:
    metadata = meta(event.obj)
    obj = store.find(event.kind, metadata.get("namespace", ""), metadata["name"])
    return obj if obj is not None and meta(obj)["uid"] == metadata["uid"] else None


def _sync_volume(store: Store, pv: Obj) -> None:
    ref = pv.get("spec", {}).get("claimRef") or {}
    claim = store.find(PVC, ref.get("namespace") or "", ref.get("name") or "")
    if claim is not None:
        _bind(store, pv, claim)


def _sync_claim(store: Store, claim: Obj) -> None:
    for pv in list(store.iter(PV, lambda pv: _claims(pv, claim))):
        _bind(store, pv, claim)
    claim = store.get(PVC, meta(claim)["namespace"], meta(claim)["name"])
    if not claim.get("spec", {}).get("volumeName"):
        _annotate_provisioner(store, claim)


def _claims(pv: Obj, claim: Obj) -> bool:
    ref = pv.get("spec", {}).get("claimRef") or {}
    same = (ref.get("namespace"), ref.get("name")) == (
        meta(claim)["namespace"],
        meta(claim)["name"],
    )
    return same and ref.get("uid") in (None, "", meta(claim)["uid"])


def _bind(store: Store, pv: Obj, claim: Obj) -> None:
    if not _claims(pv, claim) or meta(claim).get("deletionTimestamp"):
        return
    pv_name = meta(pv)["name"]
    bound_by_us = not claim.get("spec", {}).get("volumeName")
    if not bound_by_us and claim["spec"]["volumeName"] != pv_name:
        return
    namespace, name = meta(claim)["namespace"], meta(claim)["name"]
    uid = meta(claim)["uid"]
    store.patch(PV, "", pv_name, _edit(lambda o: o["spec"]["claimRef"].update(uid=uid)))
    store.patch(PV, "", pv_name, _edit(lambda o: _set_status(o, phase="Bound")), True)
    store.patch(PVC, namespace, name, _edit(lambda o: _claim_volume(o, pv_name, bound_by_us)))
    capacity = pv.get("spec", {}).get("capacity")
    modes = pv.get("spec", {}).get("accessModes")
    store.patch(
        PVC,
        namespace,
        name,
        _edit(lambda o: _set_status(o, phase="Bound", capacity=capacity, accessModes=modes)),
        True,
    )


def _claim_volume(claim: Obj, pv_name: str, bound_by_us: bool) -> None:
    claim.setdefault("spec", {})["volumeName"] = pv_name
    annotations = claim["metadata"].setdefault("annotations", {})
    annotations["pv.kubernetes.io/bind-completed"] = "yes"
    if bound_by_us:
        annotations["pv.kubernetes.io/bound-by-controller"] = "yes"


def _release(store: Store, claim: Obj) -> None:
    for pv in list(store.iter(PV, lambda pv: _claims(pv, claim))):
        if pv.get("status", {}).get("phase") == "Bound":
            edit = _edit(lambda o: _set_status(o, phase="Released"))
            store.patch(PV, "", meta(pv)["name"], edit, True)


def _annotate_provisioner(store: Store, claim: Obj) -> None:
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
    store.patch(
        PVC,
        meta(claim)["namespace"],
        meta(claim)["name"],
        _edit(
            lambda o: (
                o["metadata"]
                .setdefault("annotations", {})
                .update(dict.fromkeys(PROVISIONER_ANNOTATIONS, provisioner))
            )
        ),
    )


def _sync_workload(store: Store, kind: Kind, obj: Obj) -> None:
    replicas = obj.get("spec", {}).get("replicas")
    desired = 1 if replicas is None else int(replicas)
    want: Obj = {
        "observedGeneration": meta(obj).get("generation", 1),
        "replicas": desired,
        "readyReplicas": desired,
        "availableReplicas": desired,
        "updatedReplicas": desired,
    }
    if kind.kind == "StatefulSet":
        want["currentReplicas"] = desired
    elif kind.kind == "ReplicaSet":
        want = {k: v for k, v in want.items() if k != "updatedReplicas"}
        want["fullyLabeledReplicas"] = desired
    store.patch(
        kind,
        meta(obj)["namespace"],
        meta(obj)["name"],
        _edit(lambda o: _set_status(o, **want)),
        True,
    )


def _set_status(obj: Obj, **fields: Any) -> None:
    status = obj.setdefault("status", {})
    for key, value in fields.items():
        if value is None:
            status.pop(key, None)
        else:
            status[key] = value


def _edit(change: Callable[[Obj], Any]) -> Callable[[Obj], Obj]:
    """Adapt an in-place edit of the (already copied) object to Store.patch's contract."""

    def apply(obj: Obj) -> Obj:
        change(obj)
        return obj

    return apply
