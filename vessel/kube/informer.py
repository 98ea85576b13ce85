"""Informer: list + watch of one kind with a local cache, like client-go's.

Resumes each watch from the last resourceVersion seen (bookmarks included), relists on
410 Gone, and backs off exponentially on other errors. A relist diffs against the cache,
so handlers see ADDED / MODIFIED / DELETED for whatever changed while the watch was down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from vessel.kube.errors import Gone, KubeError
from vessel.kube.objects import KubeObject

log = logging.getLogger("vessel.kube.informer")
OnChange = Callable[[str, KubeObject], Awaitable[None]]


class Watchable(Protocol):
    async def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> tuple[list[KubeObject], str]: ...

    def watch(
        self,
        api_version: str,
        kind: str,
        resource_version: str,
        *,
        namespace: str | None = None,
        timeout_seconds: int = 30,
    ) -> Any: ...


def key_of(obj: KubeObject) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name')}"


class Informer:
    def __init__(
        self,
        cluster: Watchable,
        api_version: str,
        kind: str,
        *,
        namespace: str | None = None,
        watch_timeout: int = 30,
    ) -> None:
        self.cluster = cluster
        self.api_version = api_version
        self.kind = kind
        self.namespace = namespace
        self.watch_timeout = watch_timeout
        self.cache: dict[str, KubeObject] = {}
        self.synced = asyncio.Event()
        self.resource_version = ""

    async def run(self, on_change: OnChange) -> None:
        """Run until cancelled. A restarted run resumes watching from the last
        resourceVersion it saw, and lists again only when that has expired."""
        backoff = 0.5
        relist = not self.resource_version
        while True:
            try:
                if relist:
                    await self._relist(on_change)
                    self.synced.set()
                relist = True
                backoff = 0.5
                while True:
                    await self._watch_once(on_change)
            except Gone:
                log.info("%s watch expired at %s; relisting", self.kind, self.resource_version)
            except KubeError as exc:
                log.warning("%s informer error: %s; retrying in %.1fs", self.kind, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    async def _relist(self, on_change: OnChange) -> None:
        items, rv = await self.cluster.list(self.api_version, self.kind, self.namespace)
        fresh = {key_of(o): o for o in items}
        old, self.cache = self.cache, fresh
        self.resource_version = rv
        for key, obj in fresh.items():
            if key not in old:
                await self._notify(on_change, "ADDED", obj)
            elif old[key]["metadata"].get("resourceVersion") != obj["metadata"].get(
                "resourceVersion"
            ):
                await self._notify(on_change, "MODIFIED", obj)
        for key, obj in old.items():
            if key not in fresh:
                await self._notify(on_change, "DELETED", obj)

    async def _watch_once(self, on_change: OnChange) -> None:
        async for type_, obj in self.cluster.watch(
            self.api_version,
            self.kind,
            self.resource_version,
            namespace=self.namespace,
            timeout_seconds=self.watch_timeout,
        ):
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if rv:
                self.resource_version = rv
            if type_ == "BOOKMARK":
                continue
            if type_ == "DELETED":
                self.cache.pop(key_of(obj), None)
            else:
                self.cache[key_of(obj)] = obj
            await self._notify(on_change, type_, obj)

    async def _notify(self, on_change: OnChange, type_: str, obj: KubeObject) -> None:
        try:
            await on_change(type_, obj)
        except Exception:  # one bad object must not stop the informer
            log.exception("%s handler failed for %s %s", self.kind, type_, key_of(obj))
