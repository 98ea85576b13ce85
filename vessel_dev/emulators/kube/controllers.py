"""What kube-controller-manager and admission plugins would do, so client code paths are real.

* PV binder, storage-provisioner hand-off and default StorageClass (``binder.py``).
* PVC/PV in-use protection finalizers (``protection.py``).
* Deployments, StatefulSets and ReplicaSets report all desired replicas ready, with
  ``observedGeneration`` set, so applications look healthy.
"""

from __future__ import annotations

from vessel.kube.objects import KubeObject
from vessel_dev.emulators.kube import binder, protection
from vessel_dev.emulators.kube.edits import edit, set_status
from vessel_dev.emulators.kube.history import DELETED, Event
from vessel_dev.emulators.kube.kinds import Kind, core, named
from vessel_dev.emulators.kube.objects import meta
from vessel_dev.emulators.kube.store import Store

PVC = core("persistentvolumeclaims")
PV = core("persistentvolumes")
PODS = core("pods")
WORKLOADS = (
    named("apps", "deployments"),
    named("apps", "statefulsets"),
    named("apps", "replicasets"),
)
_WATCHED = (PVC, PV, PODS, *WORKLOADS)


def install(store: Store) -> None:
    store.add_admission(lambda kind, obj: _admit(store, kind, obj))
    store.add_hook(lambda event: _dispatch(store, event))


def _admit(store: Store, kind: Kind, obj: KubeObject) -> None:
    binder.admit(store, kind, obj)
    protection.admit(kind, obj)


def _dispatch(store: Store, event: Event) -> None:
    if event.kind not in _WATCHED:
        return
    if event.type == DELETED:
        _on_deleted(store, event)
        return
    # Hooks run after the request's writes, so the event's object may be stale.
    current = _current(store, event)
    if current is None:
        return
    if event.kind is PV:
        binder.sync_volume(store, current)
        protection.sync_volume(store, store.get(PV, "", meta(current)["name"]))
    elif event.kind is PVC:
        binder.sync_claim(store, current)
        protection.sync_claim(store, store.get(PVC, *_key(current)))
    elif event.kind is PODS:
        protection.pod_changed(store, current)
    else:
        _sync_workload(store, event.kind, current)


def _on_deleted(store: Store, event: Event) -> None:
    if event.prev is None:
        return
    if event.kind is PVC:
        binder.release(store, event.prev)
    elif event.kind is PODS:
        protection.pod_changed(store, event.prev)


def _current(store: Store, event: Event) -> KubeObject | None:
    obj = store.find(event.kind, *_key(event.obj))
    return obj if obj is not None and meta(obj)["uid"] == meta(event.obj)["uid"] else None


def _key(obj: KubeObject) -> tuple[str, str]:
    return meta(obj).get("namespace", ""), meta(obj)["name"]


def _sync_workload(store: Store, kind: Kind, obj: KubeObject) -> None:
    replicas = obj.get("spec", {}).get("replicas")
    desired = 1 if replicas is None else int(replicas)
    want: KubeObject = {
        "observedGeneration": meta(obj).get("generation", 1),
        "replicas": desired,
        "readyReplicas": desired,
        "availableReplicas": desired,
    }
    if kind.kind == "ReplicaSet":
        want["fullyLabeledReplicas"] = desired
    else:
        want["updatedReplicas"] = desired
    if kind.kind == "StatefulSet":
        want["currentReplicas"] = desired
    change = edit(lambda o: set_status(o, **want))
    store.patch(kind, *_key(obj), change, status_only=True)
