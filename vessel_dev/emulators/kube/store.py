"""Object store: one global resourceVersion, finalizer-aware deletes, namespace cascade.

All methods run on the emulator's event-loop thread, so no locking is needed. Stored
objects are never mutated in place; every write stores a fresh dict, so readers, the
event history and watchers can share them safely.
"""

from __future__ import annotations

import copy
import logging
from collections import deque
from collections.abc import Callable, Iterator

from vessel.kube.objects import KubeObject
from vessel_dev.emulators.kube import errors, objects
from vessel_dev.emulators.kube.history import ADDED, DELETED, MODIFIED, Event, EventLog, with_rv
from vessel_dev.emulators.kube.kinds import KINDS, Kind, core
from vessel_dev.emulators.kube.objects import meta

Hook = Callable[[Event], None]
Admission = Callable[[Kind, KubeObject], None]
Predicate = Callable[[KubeObject], bool]

NAMESPACES = core("namespaces")
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public")
# Controllers that keep rewriting each other would otherwise hang the request forever.
_MAX_SETTLE_EVENTS = 100_000
log = logging.getLogger(__name__)


class Store:
    def __init__(self, history: int = 10_000) -> None:
        self.rv = 0
        self.log = EventLog(history)
        self._objects: dict[Kind, dict[tuple[str, str], KubeObject]] = {k: {} for k in KINDS}
        self._hooks: list[Hook] = []
        self._admission: list[Admission] = []
        self._pending: deque[Event] = deque()
        self._settling = False
        for name in INITIAL_NAMESPACES:
            self.create(NAMESPACES, "", {"metadata": {"name": name}})

    def add_hook(self, hook: Hook) -> None:
        """Call ``hook`` for every committed event, after the triggering request's write."""
        self._hooks.append(hook)

    def add_admission(self, admission: Admission) -> None:
        """Let ``admission`` mutate each new object before it is stored."""
        self._admission.append(admission)

    # Reads. Returned objects are shared: callers must not mutate them.

    def find(self, kind: Kind, namespace: str, name: str) -> KubeObject | None:
        return self._objects[kind].get((namespace if kind.namespaced else "", name))

    def get(self, kind: Kind, namespace: str, name: str) -> KubeObject:
        obj = self.find(kind, namespace, name)
        if obj is None:
            raise errors.not_found(kind, name)
        return obj

    def iter(self, kind: Kind, predicate: Predicate | None = None) -> Iterator[KubeObject]:
        """Objects in etcd key order (namespace, then name), as the real server lists them."""
        bucket = self._objects[kind]
        for key in sorted(bucket):
            if predicate is None or predicate(bucket[key]):
                yield bucket[key]

    # Writes.

    def create(
        self, kind: Kind, namespace: str, body: KubeObject, dry_run: bool = False
    ) -> KubeObject:
        obj = objects.prepare_create(kind, namespace, body)
        metadata = obj["metadata"]
        if kind.namespaced:
            self._check_namespace_open(kind, namespace, metadata.get("name") or "")
        for admit in self._admission:
            admit(kind, obj)
        if not metadata.get("name"):
            metadata["name"] = objects.unused_name(
                kind, metadata["generateName"], lambda n: self.find(kind, namespace, n) is not None
            )
        if self.find(kind, namespace, metadata["name"]) is not None:
            raise errors.already_exists(kind, metadata["name"])
        if dry_run:
            return obj
        stored = self._write(kind, ADDED, obj, None)
        self._settle()
        return stored

    def replace(
        self,
        kind: Kind,
        namespace: str,
        name: str,
        body: KubeObject,
        status_only: bool = False,
        dry_run: bool = False,
    ) -> KubeObject:
        current = self.get(kind, namespace, name)
        new = objects.prepare_update(kind, current, body, status_only)
        return self._update(kind, current, new, objects.resource_version_of(body), dry_run)

    def patch(
        self,
        kind: Kind,
        namespace: str,
        name: str,
        apply: Callable[[KubeObject], KubeObject],
        status_only: bool = False,
        dry_run: bool = False,
    ) -> KubeObject:
        """Update with ``apply(copy of current)``; a resourceVersion it sets is a precondition."""
        current = self.get(kind, namespace, name)
        patched = objects.require_object(apply(copy.deepcopy(current)))
        new = objects.prepare_update(kind, current, patched, status_only)
        return self._update(kind, current, new, objects.resource_version_of(patched), dry_run)

    def delete(
        self,
        kind: Kind,
        namespace: str,
        name: str,
        options: KubeObject | None = None,
        dry_run: bool = False,
    ) -> KubeObject:
        current = self.get(kind, namespace, name)
        objects.check_preconditions(kind, current, (options or {}).get("preconditions") or {})
        if dry_run:
            return current
        if kind is NAMESPACES:
            result = self._delete_namespace(current)
        else:
            result = self._delete_object(kind, current)
        self._settle()
        return result

    # Internals.

    def _update(
        self, kind: Kind, current: KubeObject, new: KubeObject, requested_rv: str, dry_run: bool
    ) -> KubeObject:
        if requested_rv and requested_rv != objects.resource_version_of(current):
            raise errors.conflict(kind, meta(current)["name"])
        if objects.same_content(current, new):
            return current
        if dry_run:
            return new
        finishing = bool(meta(new).get("deletionTimestamp")) and not meta(new).get("finalizers")
        if finishing and kind is not NAMESPACES:
            result = self._remove(kind, new)
        else:
            result = self._write(kind, MODIFIED, new, current)
            if finishing:
                result = self._finish_namespace(meta(new)["name"])
        self._settle()
        return result

    def _write(
        self, kind: Kind, event_type: str, obj: KubeObject, prev: KubeObject | None
    ) -> KubeObject:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        metadata = obj["metadata"]
        self._objects[kind][(metadata.get("namespace", ""), metadata["name"])] = obj
        self._publish(Event(self.rv, event_type, kind, obj, prev))
        return obj

    def _remove(self, kind: Kind, last: KubeObject) -> KubeObject:
        metadata = meta(last)
        namespace = metadata.get("namespace", "")
        del self._objects[kind][(namespace, metadata["name"])]
        self.rv += 1
        gone = with_rv(last, self.rv)
        self._publish(Event(self.rv, DELETED, kind, gone, last))
        if kind.namespaced:
            ns_obj = self.find(NAMESPACES, "", namespace)
            if ns_obj is not None and meta(ns_obj).get("deletionTimestamp"):
                self._finish_namespace(namespace)
        return gone

    def _publish(self, event: Event) -> None:
        self.log.append(event)
        if self._hooks:
            self._pending.append(event)

    def _settle(self) -> None:
        """Run hooks until quiescent; nested writes from hooks just queue more events."""
        if self._settling:
            return
        self._settling = True
        try:
            for _ in range(_MAX_SETTLE_EVENTS):
                if not self._pending:
                    return
                self._run_hooks(self._pending.popleft())
            log.error("controllers did not settle; dropping %d events", len(self._pending))
            self._pending.clear()
        finally:
            self._settling = False

    def _run_hooks(self, event: Event) -> None:
        for hook in self._hooks:
            try:
                hook(event)
            except Exception:
                # The client's write already succeeded; a controller fault must not fail it.
                log.exception("emulated controller failed on %s %s", event.type, event.kind.kind)

    def _delete_object(self, kind: Kind, current: KubeObject) -> KubeObject:
        if not meta(current).get("finalizers"):
            return self._remove(kind, current)
        if meta(current).get("deletionTimestamp"):
            return current
        return self._write(kind, MODIFIED, objects.mark_deleting(current), current)

    def _delete_namespace(self, ns_obj: KubeObject) -> KubeObject:
        name = meta(ns_obj)["name"]
        for kind in KINDS:
            if kind.namespaced:
                for obj in list(self._objects[kind].values()):
                    if meta(obj).get("namespace") == name:
                        self._delete_object(kind, obj)
        return self._finish_namespace(name)

    def _finish_namespace(self, name: str) -> KubeObject:
        """Remove a terminating namespace once it is empty and unfinalized, else mark it."""
        ns_obj = self.get(NAMESPACES, "", name)
        empty = not any(
            meta(obj).get("namespace") == name
            for kind in KINDS
            if kind.namespaced
            for obj in self._objects[kind].values()
        )
        if empty and not meta(ns_obj).get("finalizers"):
            return self._remove(NAMESPACES, ns_obj)
        if meta(ns_obj).get("deletionTimestamp"):
            return ns_obj
        terminating = objects.mark_deleting(ns_obj)
        terminating["status"] = {**ns_obj.get("status", {}), "phase": "Terminating"}
        return self._write(NAMESPACES, MODIFIED, terminating, ns_obj)

    def _check_namespace_open(self, kind: Kind, namespace: str, name: str) -> None:
        ns_obj = self.find(NAMESPACES, "", namespace)
        if ns_obj is None:
            raise errors.not_found(NAMESPACES, namespace)
        if meta(ns_obj).get("deletionTimestamp"):
            raise errors.forbidden(
                kind,
                name,
                f"unable to create new content in namespace "
                f"{namespace} because it is being terminated",
            )
