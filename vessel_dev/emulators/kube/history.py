"""Bounded event history and watcher fan-out, with the real watch cache's filtering rules."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from vessel.kube.objects import KubeObject
from vessel_dev.emulators.kube.errors import expired
from vessel_dev.emulators.kube.kinds import Kind

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"


@dataclass(frozen=True, slots=True)
class Event:
    rv: int
    type: str
    kind: Kind
    obj: KubeObject
    # The object before this write; watchers need it to see selector transitions.
    prev: KubeObject | None


def with_rv(obj: KubeObject, rv: int) -> KubeObject:
    """Shallow copy carrying another resourceVersion; stored objects are never mutated."""
    return {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(rv)}}


class Watcher:
    """One watch stream's filter and queue; ``None`` in the queue means "close"."""

    def __init__(
        self, kind: Kind, predicate: Callable[[KubeObject], bool], max_pending: int
    ) -> None:
        self.kind = kind
        self.predicate = predicate
        self.queue: asyncio.Queue[tuple[str, KubeObject] | None] = asyncio.Queue()
        self._max_pending = max_pending
        self.closed = False

    def translate(self, event: Event) -> tuple[str, KubeObject] | None:
        """Map a store event to what this watcher sees, as k8s.io/apiserver's cacher does."""
        if event.kind is not self.kind:
            return None
        now = event.type != DELETED and self.predicate(event.obj)
        before = event.prev is not None and self.predicate(event.prev)
        if now:
            return (MODIFIED if before else ADDED), event.obj
        if before and event.prev is not None:
            return DELETED, with_rv(event.prev, event.rv)
        return None

    def offer(self, event: Event) -> None:
        if self.closed:
            return
        item = self.translate(event)
        if item is None:
            return
        if self.queue.qsize() >= self._max_pending:
            # A consumer this far behind is cut off, like the real server does; the
            # client re-watches from its last resourceVersion.
            self.close()
            return
        self.queue.put_nowait(item)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(None)


class EventLog:
    """The last ``limit`` events plus the set of live watchers."""

    def __init__(self, limit: int) -> None:
        self._events: deque[Event] = deque(maxlen=max(limit, 1))
        self._watchers: set[Watcher] = set()
        # Highest rv no longer retained: watching from below it would miss events.
        self._compacted = 0
        self._closed = False

    def append(self, event: Event) -> None:
        if len(self._events) == self._events.maxlen:
            self._compacted = self._events[0].rv
        self._events.append(event)
        for watcher in list(self._watchers):
            watcher.offer(event)

    def since(self, rv: int, kind: Kind) -> list[Event]:
        """Retained events of ``kind`` after ``rv``; raises 410 Expired if some were dropped."""
        if rv < self._compacted:
            oldest = self._events[0].rv if self._events else self._compacted + 1
            raise expired(rv, oldest)
        return [e for e in self._events if e.rv > rv and e.kind is kind]

    def subscribe(self, watcher: Watcher) -> None:
        if self._closed:
            watcher.close()  # a watch that races shutdown ends at once
        else:
            self._watchers.add(watcher)

    def unsubscribe(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    def close_all(self) -> None:
        self._closed = True
        for watcher in list(self._watchers):
            watcher.close()
        self._watchers.clear()
