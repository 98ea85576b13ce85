"""Per-cluster inventory: informers feed caches indexed by namespace; a change marks its
namespace dirty, and each dirty namespace is regrouped once it has been quiet for
`debounce` seconds (or `max_delay` after its first change), so a rolling update yields
one `app.changed`; what changed is published to KV and events with a compact diff.
Nothing is published before every kind was listed once (or refused), so a cluster that is
down at start never looks empty."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime

from services.discovery.app_record import Built, ClusterFacts, ClusterScoped
from services.discovery.grouping import group_namespace
from services.discovery.helm import latest_releases
from services.discovery.informers import HealthSink, KindInformer, ObservedKube
from services.discovery.kinds import CLUSTER_SCOPED, WATCHED
from services.discovery.publish import AppPublisher
from services.discovery.userapps import namespaces_of, user_app
from vessel.contracts.commands import DefineApp
from vessel.contracts.events import AppRecord
from vessel.contracts.models import HelmRelease
from vessel.kube.informer import Watchable
from vessel.kube.objects import KubeObject, PersistentVolumeView, meta
from vessel.stopping import cancel_and_wait

log = logging.getLogger("vessel.discovery")
KINDS = [(k.api_version, k.kind) for k in WATCHED if k.plural == k.kind.lower() + "s"]
"""Watched kinds whose resource is the kind plus "s"; `kinds.WATCHED` lists them all."""


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
        self.dirty: dict[str, tuple[float, float]] = {}
        """Namespace -> (first, last) time it changed since it was last regrouped."""
        self.dirty_user: dict[str, tuple[float, float]] = {}
        """User-defined app id -> (first, last) time its definition changed."""
        self.wake = asyncio.Event()
        self._timers: dict[str, asyncio.TimerHandle] = {}

    async def run(self) -> None:
        tasks = [asyncio.create_task(i.run(self._on_change)) for i in self.informers.values()]
        tasks.append(asyncio.create_task(self._publisher()))
        try:
            await asyncio.gather(*tasks)
        finally:
            await cancel_and_wait(tasks)
            for timer in self._timers.values():
                timer.cancel()

    # --- changes -----------------------------------------------------------------------

    @staticmethod
    def _touch(dirty: dict[str, tuple[float, float]], keys: Iterable[str], at: float) -> None:
        for key in keys:
            dirty[key] = (dirty.get(key, (at, at))[0], at)

    def _mark(self, *namespaces: str) -> None:
        self._touch(self.dirty, namespaces, asyncio.get_running_loop().time())
        self.wake.set()

    async def _on_change(self, type_: str, obj: KubeObject) -> None:
        kind, name = obj["kind"], meta(obj)["name"]
        if kind == "Namespace":
            self._mark(name)
        elif kind == "PersistentVolume":
            before = self.pv_namespace.pop(name, None)
            claim = PersistentVolumeView(obj).claim_ref
            now = claim[0] if claim else None
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
                self._touch(self.dirty_user, [key], asyncio.get_running_loop().time())
                for d in (old.get(key), definitions.get(key)):
                    if d is not None:
                        self._mark(*namespaces_of(d))
        self.definitions = dict(definitions)
        self.wake.set()

    def objects_in(self, namespace: str) -> list[KubeObject]:
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
        # Everything once, also what was published before a restart; like any change, once
        # quiet: objects created just now (a claim being bound) get to settle first.
        loop = asyncio.get_running_loop()
        synced = loop.time()
        self._touch(self.dirty, self.index, synced)
        self._touch(self.dirty, (r.namespace for r in self.published.values()), synced)
        self._touch(self.dirty_user, self.definitions, synced)
        users = (k for k, r in self.published.items() if r.grouping == "user")
        self._touch(self.dirty_user, users, synced)
        while True:
            now = loop.time()
            due, due_user = self._due(self.dirty, now), self._due(self.dirty_user, now)
            if due or due_user:
                try:
                    await self.flush(due, due_user)
                except Exception:  # the bus reconnects: regroup them again shortly
                    log.exception("cluster %s: publishing failed; retrying", self.cluster_id)
                    self._touch(self.dirty, due, loop.time())
                    self._touch(self.dirty_user, due_user, loop.time())
                    await asyncio.sleep(1.0)
                continue
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), self._next_due(now))
            except TimeoutError:
                pass

    def _due(self, dirty: dict[str, tuple[float, float]], now: float) -> set[str]:
        """Keys quiet for `debounce` seconds, or changing for `max_delay`: a burst of changes
        (a rolling update) is regrouped once, and a busy namespace cannot delay the others."""
        due = {
            key
            for key, (first, last) in dirty.items()
            if now - last >= self.debounce or now - first >= self.max_delay
        }
        for key in due:
            del dirty[key]
        return due

    def _next_due(self, now: float) -> float | None:
        times = [
            min(last + self.debounce, first + self.max_delay)
            for first, last in (*self.dirty.values(), *self.dirty_user.values())
        ]
        return max(min(times) - now, 0.0) if times else None

    def facts(self) -> ClusterFacts:
        pvs = ClusterScoped(self.informers["PersistentVolume"].cache)
        classes = ClusterScoped(self.informers["StorageClass"].cache)
        releases: dict[str, dict[str, HelmRelease]] = {}

        def release(ns: str, name: str) -> HelmRelease | None:
            if ns not in releases:
                cache = self.informers["Secret"].cache
                names = self.index.get(ns, {}).get("Secret", set())
                found = (cache.get(f"{ns}/{n}") for n in names)
                releases[ns] = latest_releases([o for o in found if o is not None])
            return releases[ns].get(name)

        return ClusterFacts(
            self.cluster_id, pvs, classes, release, datetime.now(UTC), self.pending_grace
        )

    async def flush(self, dirty: set[str], dirty_user: set[str]) -> None:
        """Regroup the `dirty` namespaces and user-defined apps; publish what changed."""
        facts = self.facts()
        unmanaged = {key for key, d in self.definitions.items() if d.unmanaged}
        touching = {
            key: d
            for key, d in self.definitions.items()
            if not d.unmanaged and (key in dirty_user or namespaces_of(d) & dirty)
        }
        current: dict[str, Built] = {}
        claimed: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for key, d in touching.items():
            built, selected = user_app(facts, d, self.objects_in)
            current[key] = built
            for ns, kind, name in selected:
                claimed[ns].add((kind, name))
        reserved: dict[str, set[str]] = defaultdict(set)
        for d in self.definitions.values():
            if not d.unmanaged:
                reserved[d.namespace].add(d.name)
        for ns in dirty:
            current.update(
                group_namespace(
                    facts,
                    ns,
                    self.objects_in(ns),
                    claimed=frozenset(claimed[ns]),
                    reserved=frozenset(reserved[ns]),
                )
            )
        for key in unmanaged:  # grouped as ever, then left out: published nowhere
            current.pop(key, None)
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
        for key in in_scope - set(current):
            await self.publisher.remove(self.published.pop(key))
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
                self._touch(self.dirty_user, [key], 0.0)
                self.wake.set()
            else:
                self._mark(record.namespace)

        self._timers[key] = loop.call_later(max(delay, 0.0), due)
