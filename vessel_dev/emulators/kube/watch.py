"""Watch streams: newline-delimited JSON events over a chunked HTTP response."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from aiohttp import web

from vessel.kube.objects import KubeObject
from vessel_dev.emulators.kube import errors
from vessel_dev.emulators.kube.errors import ApiError
from vessel_dev.emulators.kube.history import ADDED, Watcher
from vessel_dev.emulators.kube.kinds import Kind
from vessel_dev.emulators.kube.selectors import Predicate
from vessel_dev.emulators.kube.store import Store
from vessel_dev.emulators.kube.tables import Render

# Below the one-second cadence promised to informers, so a bookmark is never late.
BOOKMARK_INTERVAL = 0.5


@dataclass(frozen=True, slots=True)
class WatchRequest:
    kind: Kind
    predicate: Predicate
    resource_version: str
    timeout: float | None
    bookmarks: bool
    render: Render | None = None  # e.g. a Table per object, when kubectl asks for one

    def line(self, event_type: str, obj: KubeObject) -> bytes:
        return event_line(event_type, obj if self.render is None else self.render(obj))


def event_line(event_type: str, obj: KubeObject) -> bytes:
    return json.dumps({"type": event_type, "object": obj}, separators=(",", ":")).encode() + b"\n"


def _initial_events(store: Store, watcher: Watcher, rv_text: str) -> list[tuple[str, KubeObject]]:
    """Synthetic ADDED for rv "" / "0", else the retained history after ``rv_text``."""
    if rv_text in ("", "0"):
        return [(ADDED, obj) for obj in store.iter(watcher.kind, watcher.predicate)]
    try:
        rv = int(rv_text)
    except ValueError as exc:
        raise errors.bad_request(f"invalid resource version: {rv_text!r}") from exc
    translated = (watcher.translate(e) for e in store.log.since(rv, watcher.kind))
    return [item for item in translated if item is not None]


async def serve_watch(
    request: web.BaseRequest, store: Store, watch: WatchRequest, max_pending: int
) -> web.StreamResponse:
    watcher = Watcher(watch.kind, watch.predicate, max_pending)
    try:
        initial = _initial_events(store, watcher, watch.resource_version)
        expired: ApiError | None = None
    except ApiError as err:
        if err.code != 410:
            raise
        initial, expired = [], err
    # Subscribing in the same loop step as reading the initial state: nothing falls between.
    if expired is None:
        store.log.subscribe(watcher)
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    try:
        await response.prepare(request)
        if expired is not None:
            # The real server answers 200 and reports expiry in-band; informers relist on it.
            await response.write(event_line("ERROR", expired.status()))
        else:
            for event_type, obj in initial:
                await response.write(watch.line(event_type, obj))
            await _pump(response, watcher, watch, store)
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client went away; nothing left to tell it
    finally:
        store.log.unsubscribe(watcher)
    return response


async def _pump(
    response: web.StreamResponse, watcher: Watcher, watch: WatchRequest, store: Store
) -> None:
    loop = asyncio.get_running_loop()
    deadline = None if watch.timeout is None else loop.time() + watch.timeout
    interval = BOOKMARK_INTERVAL if watch.bookmarks else None
    while True:
        remaining = None if deadline is None else deadline - loop.time()
        if remaining is not None and remaining <= 0:
            return
        wait = min((w for w in (interval, remaining) if w is not None), default=None)
        try:
            item = await asyncio.wait_for(watcher.queue.get(), wait)
        except TimeoutError:
            if watch.bookmarks and (deadline is None or loop.time() < deadline):
                await response.write(event_line("BOOKMARK", _bookmark(watch.kind, store.rv)))
            continue
        if item is None:
            return
        await response.write(watch.line(*item))


def _bookmark(kind: Kind, rv: int) -> KubeObject:
    # Safe to claim the store's rv: the queue is empty, so every earlier event was delivered.
    return {
        "kind": kind.kind,
        "apiVersion": kind.api_version,
        "metadata": {"resourceVersion": str(rv)},
    }
