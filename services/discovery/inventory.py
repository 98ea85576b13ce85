"""Per-cluster inventory: informers feed caches indexed by namespace; a change marks its
namespace dirty, and dirty namespaces are regrouped after a rolling debounce (quiet for
`debounce` seconds, at most `max_delay` after the first change), so a rolling update
yields one `app.changed`, then published to KV and events with a compact diff."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import UTC, datetime

from services.discovery.grouping import default_include, group_namespace, user_app
from services.discovery.helm import latest_releases
from services.discovery.informers import HealthSink, KindInformer, ObservedKube
from services.discovery.kinds import CLUSTER_SCOPED, WATCHED, Obj
from services.discovery.publish import AppPublisher
from services.discovery.records import Built, Context, meta
from vessel.contracts.commands import DefineApp
from vessel.contracts.events import AppRecord
from vessel.contracts.models import HelmRelease, app_id
from vessel.kube.informer import Watchable

log = logging.getLogger("vessel.discovery")
KINDS = [(k.api_version, k.kind) for k in WATCHED if k.plural == k.kind.lower() + "s"]
"""Watched kinds whose resource is the kind plus "s"; `kinds.WATCHED` lists them all."""


def definition_id(d: DefineApp) -> str:
    return app_id(d.cluster, d.namespace, d.name)


def namespaces_of(d: DefineApp) -> set[str]:
    return {s.namespace for s in default_include(d)}


class ClusterInventory:
    def __init__(
        self,
        cluster_id: str,
        kube: Watchable,
        publisher: AppPublisher,
        health: HealthSink,
        *,
        published: dict[str, AppRecord] | None = None,
        definitions: dict[str, DefineApp] | None = None,
        debounce: float = 0.3,
        max_delay: float = 2.0,
        pending_grace: float = 300.0,
        min_backoff: float = 0.5,
        max_backoff: float = 30.0,
        watch_timeout: int = 30,
    ) -> None:
        self.cluster_id = cluster_id
        self.publisher = publisher
        self.published: dict[str, AppRecord] = published if published is not None else {}
        self.definitions: dict[str, DefineApp] = dict(definitions or {})
        self.debounce, self.max_delay, self.pending_grace = debounce, max_delay, pending_grace
        observed = ObservedKube(kube, health)
        self.informers = {
            k.kind: KindInformer(
                observed,
                k,
                min_backoff=min_backoff,
                max_backoff=max_backoff,
                watch_timeout=watch_timeout,
            )
            for k in WATCHED
        }
        self.index: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        """Namespace -> kind -> names of the objects cached for it."""
        self.pv_namespace: dict[str, str] = {}
        self.dirty: set[str] = set()
        self.dirty_user: set[str] = set()
        self.wake = asyncio.Event()
        self.publishes = 0
        self._timers: dict[str, asyncio.TimerHandle] = {}

    async def run(self) -> None:
        tasks = [asyncio.create_task(i.run(self._on_change)) for i in self.informers.values()]
        tasks.append(asyncio.create_task(self._publisher()))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for timer in self._timers.values():
                timer.cancel()

    # --- changes -----------------------------------------------------------------------

    def _mark(self, *namespaces: str) -> None:
        self.dirty.update(namespaces)
        self.wake.set()

    async def _on_change(self, type_: str, obj: Obj) -> None:
        kind, name = obj["kind"], meta(obj)["name"]
        if kind == "Namespace":
            self._mark(name)
        elif kind == "PersistentVolume":
            before = self.pv_namespace.pop(name, None)
            now = ((obj.get("spec") or {}).get("claimRef") or {}).get("namespace")
            if now and type_ != "DELETED":
                self.pv_namespace[name] = now
            self._mark(*(ns for ns in (before, now) if ns))
        elif kind == "StorageClass":
            self._mark(*self.index)
        elif kind not in CLUSTER_SCOPED and meta(obj).get("namespace"):
            ns = meta(obj)["namespace"]
            if type_ == "DELETED":
                names = self.index.get(ns, {}).get(kind)
                if names is not None:
                    names.discard(name)
                    if not names:
                        del self.index[ns][kind]
                        if not self.index[ns]:
                            del self.index[ns]
            else:
                self.index[ns][kind].add(name)
            self._mark(ns)

    def set_definitions(self, definitions: dict[str, DefineApp]) -> None:
        """Replace the user-defined apps; only what they touch is regrouped."""
        old = self.definitions
        for key in set(old) | set(definitions):
            if old.get(key) != definitions.get(key):
                self.dirty_user.add(key)
                for d in (old.get(key), definitions.get(key)):
                    if d is not None:
                        self._mark(*namespaces_of(d))
        self.definitions = dict(definitions)
        self.wake.set()

    def objects_in(self, namespace: str) -> list[Obj]:
        out = []
        for kind, names in self.index.get(namespace, {}).items():
            cache = self.informers[kind].cache
            for name in names:
                obj = cache.get(f"{namespace}/{name}")
                if obj is not None:
                    out.append(obj)
        return out

    # --- publishing ----------------------------------------------------------------------

    async def _publisher(self) -> None:
        await asyncio.gather(*(i.settled.wait() for i in self.informers.values()))
        self.dirty.update(self.index)
        self.dirty.update(r.namespace for r in self.published.values() if r.grouping != "user")
        self.dirty_user.update(self.definitions)
        self.dirty_user.update(k for k, r in self.published.items() if r.grouping == "user")
        while True:
            await self.flush()
            await self.wake.wait()
            await self._settle()

    async def _settle(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_delay
        while True:
            self.wake.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            try:
                await asyncio.wait_for(self.wake.wait(), min(self.debounce, remaining))
            except TimeoutError:
                return

    def context(self) -> Context:
        pvs = {meta(o)["name"]: o for o in self.informers["PersistentVolume"].cache.values()}
        classes = {meta(o)["name"]: o for o in self.informers["StorageClass"].cache.values()}
        releases: dict[str, dict[str, HelmRelease]] = {}

        def release(ns: str, name: str) -> HelmRelease | None:
            if ns not in releases:
                cache = self.informers["Secret"].cache
                names = self.index.get(ns, {}).get("Secret", set())
                found = (cache.get(f"{ns}/{n}") for n in names)
                releases[ns] = latest_releases([o for o in found if o is not None])
            return releases[ns].get(name)

        return Context(
            self.cluster_id, pvs, classes, release, datetime.now(UTC), self.pending_grace
        )

    async def flush(self) -> None:
        dirty, self.dirty = self.dirty, set()
        dirty_user, self.dirty_user = self.dirty_user, set()
        ctx = self.context()
        touching = {
            key: d
            for key, d in self.definitions.items()
            if key in dirty_user or namespaces_of(d) & dirty
        }
        current: dict[str, Built] = {}
        claimed: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for key, d in touching.items():
            built, selected = user_app(ctx, d, self.objects_in)
            current[key] = built
            for ns, kind, name in selected:
                claimed[ns].add((kind, name))
        reserved: dict[str, set[str]] = defaultdict(set)
        for d in self.definitions.values():
            reserved[d.namespace].add(d.name)
        for ns in dirty:
            current.update(
                group_namespace(
                    ctx,
                    ns,
                    self.objects_in(ns),
                    claimed=frozenset(claimed[ns]),
                    reserved=frozenset(reserved[ns]),
                )
            )
        in_scope = {
            key
            for key, r in self.published.items()
            if (
                (key in touching or key in dirty_user)
                if r.grouping == "user"
                else r.namespace in dirty
            )
        }
        for key, built in current.items():
            self._recheck(key, built)
            previous = self.published.get(key)
            if previous != built.record:
                await self.publisher.put(built.record, previous)
                self.published[key] = built.record
                self.publishes += 1
        for key in in_scope - set(current):
            await self.publisher.remove(self.published.pop(key))
            self.publishes += 1
        log.debug("cluster %s: %d namespaces regrouped", self.cluster_id, len(dirty))

    def _recheck(self, key: str, built: Built) -> None:
        """Regroup again when a Pending claim outlives the grace period."""
        if built.recheck_at is None:
            return
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        loop = asyncio.get_running_loop()
        delay = (built.recheck_at - datetime.now(UTC)).total_seconds() + 0.05
        record = built.record

        def due() -> None:
            self._timers.pop(key, None)
            if record.grouping == "user":
                self.dirty_user.add(key)
                self.wake.set()
            else:
                self._mark(record.namespace)

        self._timers[key] = loop.call_later(max(delay, 0.0), due)
