"""The Kubernetes API emulator's watches: history replay, live streams, 410s and bookmarks."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from kubernetes import client, watch
from kubernetes.client import ApiException
from kubernetes.informer import SharedInformer

from tests.emulators.support import (
    NS,
    configmap,
    names,
    pvc,
    running,
    wait_for,
    watch_events,
)

pytestmark = pytest.mark.timeout(30)


# Watches


def test_watch_from_resource_version_replays_exact_history(core: client.CoreV1Api) -> None:
    core.create_namespaced_secret(NS, {"metadata": {"name": "noise"}})
    start = core.list_namespaced_config_map(NS).metadata.resource_version
    core.create_namespaced_config_map(NS, configmap("a"))
    core.patch_namespaced_config_map("a", NS, {"data": {"k": "2"}})
    core.create_namespaced_secret(NS, {"metadata": {"name": "other-kind"}})
    core.create_namespaced_config_map(NS, configmap("b"))
    core.delete_namespaced_config_map("a", NS)
    events = watch_events(
        core.list_namespaced_config_map, NS, resource_version=start, timeout_seconds=1
    )
    assert names(events) == [("ADDED", "a"), ("MODIFIED", "a"), ("ADDED", "b"), ("DELETED", "a")]
    rvs = [int(obj["metadata"]["resourceVersion"]) for _, obj in events]
    assert rvs == sorted(rvs) and len(set(rvs)) == 4
    assert events[1][1]["data"] == {"k": "2"}
    assert all(obj["kind"] == "ConfigMap" for _, obj in events)


def test_watch_from_zero_lists_then_streams_live(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map(NS, configmap("a"))
    core.create_namespaced_config_map(NS, configmap("b"))
    seen: list[tuple[str, str]] = []
    stream = watch.Watch()
    for event in stream.stream(
        core.list_namespaced_config_map, NS, resource_version="0", timeout_seconds=5
    ):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 2:
            # Created only after the synthetic ADDEDs arrived, so it can only come live.
            core.create_namespaced_config_map(NS, configmap("c"))
        if len(seen) == 3:
            stream.stop()
    assert seen == [("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c")]


def test_watch_all_namespaces_stream_is_live(core: client.CoreV1Api) -> None:
    core.create_namespace({"metadata": {"name": "team"}})
    seen: list[tuple[str, str]] = []
    watcher = watch.Watch()
    rv = core.list_persistent_volume_claim_for_all_namespaces().metadata.resource_version

    def consume() -> None:
        for event in watcher.stream(
            core.list_persistent_volume_claim_for_all_namespaces, resource_version=rv
        ):
            obj = event["object"]
            seen.append((event["type"], f"{obj.metadata.namespace}/{obj.metadata.name}"))
            if len(seen) == 4:
                watcher.stop()

    thread = threading.Thread(target=consume)
    thread.start()
    core.create_namespaced_persistent_volume_claim("team", pvc("one"))
    core.create_namespaced_persistent_volume_claim(NS, pvc("two"))
    core.delete_namespaced_persistent_volume_claim("one", "team")
    thread.join(10)
    assert not thread.is_alive()
    # The pvc-protection finalizer makes a claim's deletion two steps, as in a real cluster.
    assert seen == [
        ("ADDED", "team/one"),
        ("ADDED", "default/two"),
        ("MODIFIED", "team/one"),
        ("DELETED", "team/one"),
    ]


def test_shared_informer_tracks_objects(tmp_path: Path) -> None:
    with running(tmp_path) as (emulator, api):
        core = client.CoreV1Api(api)
        core.create_namespaced_persistent_volume_claim(NS, pvc("before"))
        informer = SharedInformer(core.list_persistent_volume_claim_for_all_namespaces)
        informer.start()
        try:
            core.create_namespaced_persistent_volume_claim(NS, pvc("after"))
            wait_for(
                lambda: {o.metadata.name for o in informer.cache.list()} == {"before", "after"}
            )
            core.delete_namespaced_persistent_volume_claim("before", NS)
            wait_for(lambda: [o.metadata.name for o in informer.cache.list()] == ["after"])
        finally:
            informer.stop()
        # A client that hangs up must not leave its watcher registered on the server.
        wait_for(lambda: not emulator._store.log._watchers)


def test_watch_older_than_history_gets_410_expired(tmp_path: Path) -> None:
    with running(tmp_path, history=5) as (_, api):
        core = client.CoreV1Api(api)
        start = core.list_namespaced_config_map(NS).metadata.resource_version
        for i in range(10):
            core.create_namespaced_config_map(NS, configmap(f"cm-{i}"))
        response = core.list_namespaced_config_map(
            NS, watch=True, resource_version=start, _preload_content=False
        )
        lines = [line for line in response.data.decode().splitlines() if line]
        assert len(lines) == 1
        event = json.loads(lines[0])
        assert event["type"] == "ERROR"
        assert event["object"]["kind"] == "Status"
        assert (event["object"]["code"], event["object"]["reason"]) == (410, "Expired")
        with pytest.raises(ApiException) as caught:
            watch_events(
                core.list_namespaced_config_map, NS, resource_version=start, timeout_seconds=1
            )
        assert caught.value.status == 410
        recent = core.list_namespaced_config_map(NS).metadata.resource_version
        assert (
            watch_events(
                core.list_namespaced_config_map, NS, resource_version=recent, timeout_seconds=1
            )
            == []
        )


def test_selector_transitions_produce_added_and_deleted(core: client.CoreV1Api) -> None:
    start = core.list_namespaced_config_map(NS).metadata.resource_version
    core.create_namespaced_config_map(NS, configmap("a", {"app": "web"}))
    core.patch_namespaced_config_map("a", NS, {"data": {"k": "2"}})
    core.patch_namespaced_config_map("a", NS, {"metadata": {"labels": {"app": "db"}}})
    core.patch_namespaced_config_map("a", NS, {"data": {"k": "3"}})
    core.patch_namespaced_config_map("a", NS, {"metadata": {"labels": {"app": "web"}}})
    core.delete_namespaced_config_map("a", NS)
    events = watch_events(
        core.list_namespaced_config_map,
        NS,
        resource_version=start,
        label_selector="app=web",
        timeout_seconds=1,
    )
    assert [kind for kind, _ in events] == ["ADDED", "MODIFIED", "DELETED", "ADDED", "DELETED"]
    assert events[2][1]["metadata"]["labels"] == {"app": "web"}
    fields = watch_events(
        core.list_namespaced_config_map,
        NS,
        resource_version=start,
        field_selector="metadata.name=b",
        timeout_seconds=1,
    )
    assert fields == []


def test_bookmarks_while_idle(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map(NS, configmap("a"))
    current = core.list_namespaced_config_map(NS).metadata.resource_version
    stream = watch.Watch()
    events = [
        (e["type"], e["raw_object"])
        for e in stream.stream(
            core.list_namespaced_config_map,
            NS,
            resource_version=current,
            allow_watch_bookmarks=True,
            timeout_seconds=3,
        )
    ]
    assert len(events) >= 2
    assert {kind for kind, _ in events} == {"BOOKMARK"}
    assert events[0][1] == {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": current},
    }
    assert stream.resource_version == current


def test_timeout_seconds_ends_the_stream(core: client.CoreV1Api) -> None:
    started = time.monotonic()
    assert watch_events(core.list_namespaced_pod, NS, timeout_seconds=1) == []
    assert 0.9 <= time.monotonic() - started < 5


def test_stop_closes_open_watches(tmp_path: Path) -> None:
    with running(tmp_path) as (emulator, api):
        core = client.CoreV1Api(api)
        finished = threading.Event()

        def consume() -> None:
            response = core.list_namespaced_config_map(NS, watch=True, _preload_content=False)
            for _ in response.stream():
                pass
            finished.set()

        thread = threading.Thread(target=consume, daemon=True)
        thread.start()
        time.sleep(0.3)
        started = time.monotonic()
        emulator.stop()
        assert time.monotonic() - started < 3
        assert finished.wait(5)
        emulator.stop()  # idempotent
