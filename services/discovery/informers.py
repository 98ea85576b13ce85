"""Informers as discovery runs them.

`ObservedKube` sits between the kube port and the informers: it slims every object before
an informer caches it (so no cache ever holds Secret data) and tells the cluster's health
about every answer and failure of the API server. `KindInformer` resumes its watch from
the last resourceVersion after any error (a dropped connection included), lists again only
on 410 Gone, backs off with jitter between `min_backoff` and `max_backoff`, and is
`settled` once listed, or once the server says the kind cannot be listed (403, not
served), so the other kinds are published without it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from typing import Protocol

from services.discovery.health import short
from services.discovery.kinds import BY_KIND, WatchedKind, slim
from vessel.kube.errors import Forbidden, Gone, KubeError, NotFound
from vessel.kube.informer import Informer, OnChange, Watchable
from vessel.kube.objects import KubeObject

log = logging.getLogger("vessel.discovery")


class HealthSink(Protocol):
    def contact(self, kind: WatchedKind) -> None: ...

    def failed(self, kind: WatchedKind, exc: KubeError) -> None: ...


class ObservedKube:
    def __init__(self, kube: Watchable, health: HealthSink) -> None:
        self.kube = kube
        self.health = health

    async def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> tuple[list[KubeObject], str]:
        watched = BY_KIND[kind]
        try:
            items, rv = await self.kube.list(api_version, kind, namespace, label_selector)
        except Gone:
            self.health.contact(watched)
            raise
        except KubeError as exc:
            self.health.failed(watched, exc)
            raise
        self.health.contact(watched)
        return [slim(watched, o) for o in items], rv

    async def watch(
        self,
        api_version: str,
        kind: str,
        resource_version: str,
        *,
        namespace: str | None = None,
        timeout_seconds: int = 30,
    ) -> AsyncIterator[tuple[str, KubeObject]]:
        watched = BY_KIND[kind]
        stream = self.kube.watch(
            api_version,
            kind,
            resource_version,
            namespace=namespace,
            timeout_seconds=timeout_seconds,
        )
        try:
            async for type_, obj in stream:
                self.health.contact(watched)
                yield type_, (obj if type_ in ("BOOKMARK", "ERROR") else slim(watched, obj))
        except Gone:
            self.health.contact(watched)
            raise
        except KubeError as exc:
            self.health.failed(watched, exc)
            raise


class KindInformer(Informer):
    def __init__(
        self,
        cluster: Watchable,
        watched: WatchedKind,
        *,
        min_backoff: float = 0.5,
        max_backoff: float = 30.0,
        watch_timeout: int = 30,
    ) -> None:
        super().__init__(cluster, watched.api_version, watched.kind, watch_timeout=watch_timeout)
        self.watched = watched
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.settled = asyncio.Event()
        self.lists = 0
        """How many times the kind was listed (the first sync included)."""
        self._failing: type[KubeError] | None = None

    def _report(self, exc: KubeError, backoff: float) -> None:
        """A warning when a kind starts failing in a new way; the retries at debug level
        (the cluster's condition already tells, once)."""
        level = logging.DEBUG if type(exc) is self._failing else logging.WARNING
        self._failing = type(exc)
        where = str(exc).partition(":")[0]
        log.log(level, "%s: %s: %s; retrying in %.1fs", where, self.kind, short(exc), backoff)

    async def run(self, on_change: OnChange) -> None:
        backoff = self.min_backoff
        need_list = not self.resource_version
        while True:
            seen = self.resource_version
            try:
                if need_list:
                    await self._relist(on_change)
                    self.lists += 1
                    need_list = False
                    self.synced.set()
                    self.settled.set()
                    self._failing = None
                await self._watch_once(on_change)
                backoff = self.min_backoff
                continue
            except Gone:
                log.info("%s watch expired at %s; relisting", self.kind, self.resource_version)
                need_list = True
                continue
            except (Forbidden, NotFound) as exc:
                self.settled.set()  # publish the other kinds; retry in case RBAC changes
                self._report(exc, backoff)
            except KubeError as exc:
                self._report(exc, backoff)
            except Exception:  # a bug must not end the inventory of the cluster
                log.exception("%s informer failed; retrying in %.1fs", self.kind, backoff)
            if self.resource_version != seen:
                backoff = self.min_backoff  # it made progress before failing
                self._failing = None
            await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
            backoff = min(backoff * 2, self.max_backoff)
