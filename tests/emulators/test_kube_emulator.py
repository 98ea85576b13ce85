"""The Kubernetes API emulator, driven by the official client over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, dynamic, watch
from kubernetes.client import ApiClient, ApiException
from kubernetes.informer import SharedInformer

from vessel.emulators.kube import KubeEmulator

pytestmark = pytest.mark.timeout(30)

Obj = dict[str, Any]
NS = "default"
MERGE = "application/merge-patch+json"
REPO_ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def running(tmp_path: Path, **kwargs: Any) -> Iterator[tuple[KubeEmulator, ApiClient]]:
    emulator = KubeEmulator(**kwargs)
    emulator.start()
    kubeconfig = tmp_path / f"kubeconfig-{id(emulator)}"
    emulator.write_kubeconfig(kubeconfig)
    api = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        yield emulator, api
    finally:
        api.close()
        emulator.stop()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ApiClient]:
    with running(tmp_path) as (_, api_client):
        yield api_client


@pytest.fixture
def core(api: ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


def error_of(call: Callable[[], Any]) -> tuple[int, Obj]:
    with pytest.raises(ApiException) as caught:
        call()
    return caught.value.status, json.loads(caught.value.body)


def raw_json(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Obj:
    response = call(*args, _preload_content=False, **kwargs)
    body: Obj = json.loads(response.data)
    return body


def configmap(name: str, labels: dict[str, str] | None = None, **extra: Any) -> Obj:
    return {"metadata": {"name": name, "labels": labels or {}}, "data": {"k": "v"}, **extra}


def watch_events(func: Callable[..., Any], *args: Any, **kwargs: Any) -> list[tuple[str, Obj]]:
    """Every event of a watch that ends by its own timeoutSeconds."""
    stream = watch.Watch().stream(func, *args, **kwargs)
    return [(event["type"], event["raw_object"]) for event in stream]


def names(events: list[tuple[str, Obj]]) -> list[tuple[str, str]]:
    return [(kind, obj["metadata"]["name"]) for kind, obj in events]


# CRUD and errors


def test_create_fills_server_metadata_and_returns_201(core: client.CoreV1Api) -> None:
    created, status, _ = core.create_namespaced_config_map_with_http_info(NS, configmap("a"))
    assert status == 201
    meta = created.metadata
    assert meta.uid and meta.resource_version.isdigit() and meta.generation == 1
    assert meta.creation_timestamp is not None
    got = raw_json(core.read_namespaced_config_map, "a", NS)
    assert (got["kind"], got["apiVersion"]) == ("ConfigMap", "v1")
    assert got["metadata"]["creationTimestamp"].endswith("Z")
    assert got["metadata"]["uid"] == meta.uid
    generated = core.create_namespaced_config_map(NS, {"metadata": {"generateName": "gen-"}})
    assert generated.metadata.name.startswith("gen-") and len(generated.metadata.name) == 9


def test_error_statuses_match_the_real_server(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map(NS, configmap("a"))
    code, body = error_of(lambda: core.read_namespaced_config_map("nope", NS))
    assert code == 404
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'configmaps "nope" not found',
        "reason": "NotFound",
        "code": 404,
        "details": {"name": "nope", "kind": "configmaps"},
    }
    code, body = error_of(lambda: core.create_namespaced_config_map(NS, configmap("a")))
    assert (code, body["reason"], body["details"]["name"]) == (409, "AlreadyExists", "a")
    code, body = error_of(lambda: core.create_namespaced_config_map(NS, {"data": {}}))
    assert (code, body["reason"]) == (422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    mismatched = {"metadata": {"name": "b", "namespace": "kube-system"}}
    code, body = error_of(lambda: core.create_namespaced_config_map(NS, mismatched))
    assert (code, body["reason"]) == (422, "Invalid")
    code, body = error_of(lambda: core.create_namespaced_config_map("missing", configmap("c")))
    assert (code, body["reason"], body["details"]) == (
        404,
        "NotFound",
        {"name": "missing", "kind": "namespaces"},
    )


def test_group_kinds_and_cluster_scoped_kinds(api: ApiClient) -> None:
    apps = client.AppsV1Api(api)
    code, body = error_of(lambda: apps.read_namespaced_deployment("x", NS))
    assert code == 404
    assert body["message"] == 'deployments.apps "x" not found'
    assert body["details"] == {"name": "x", "kind": "deployments", "group": "apps"}
    storage = client.StorageV1Api(api)
    storage.create_storage_class(
        {"metadata": {"name": "fast", "namespace": "ignored"}, "provisioner": "vessel.io/csi"}
    )
    sc = raw_json(storage.read_storage_class, "fast")
    assert "namespace" not in sc["metadata"]
    assert sc["apiVersion"] == "storage.k8s.io/v1"


def test_resource_version_is_global_and_monotonic(api: ApiClient) -> None:
    core = client.CoreV1Api(api)
    rvs = [
        int(core.create_namespaced_config_map(NS, configmap("a")).metadata.resource_version),
        int(
            core.create_namespaced_secret(NS, {"metadata": {"name": "s"}}).metadata.resource_version
        ),
        int(
            client.AppsV1Api(api)
            .create_namespaced_deployment(NS, deployment("d"))
            .metadata.resource_version
        ),
        int(
            core.patch_namespaced_config_map(
                "a", NS, {"data": {"x": "y"}}
            ).metadata.resource_version
        ),
    ]
    assert rvs == sorted(rvs) and len(set(rvs)) == 4
    listed = core.list_namespaced_config_map(NS).metadata.resource_version
    assert int(listed) >= rvs[-1]


# Lists, selectors, pagination


def test_label_selectors_full_syntax(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map(NS, configmap("a", {"app": "x", "tier": "web"}))
    core.create_namespaced_config_map(NS, configmap("b", {"app": "y"}))
    core.create_namespaced_config_map(NS, configmap("c", {"app": "z", "tier": "db"}))
    core.create_namespaced_config_map(NS, configmap("d"))

    def select(selector: str) -> list[str]:
        found = core.list_namespaced_config_map(NS, label_selector=selector).items
        return [item.metadata.name for item in found]

    assert select("app=x") == ["a"]
    assert select("app==y") == ["b"]
    assert select("app!=x") == ["b", "c", "d"]
    assert select("app in (x, y)") == ["a", "b"]
    assert select("app notin (x)") == ["b", "c", "d"]
    assert select("tier") == ["a", "c"]
    assert select("!tier") == ["b", "d"]
    assert select("app in (x,z),tier!=db") == ["a"]
    assert select("") == ["a", "b", "c", "d"]
    code, body = error_of(lambda: select("app in x"))
    assert (code, body["reason"]) == (400, "BadRequest")


def test_field_selectors(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map(NS, configmap("a"))
    core.create_namespaced_config_map(NS, configmap("b"))
    items = core.list_namespaced_config_map(NS, field_selector="metadata.name=b").items
    assert [i.metadata.name for i in items] == ["b"]
    items = core.list_namespaced_config_map(NS, field_selector="metadata.name!=b").items
    assert [i.metadata.name for i in items] == ["a"]
    for name, kind in (("e1", "Pod"), ("e2", "PersistentVolumeClaim")):
        core.create_namespaced_event(
            NS,
            {
                "metadata": {"name": name},
                "involvedObject": {"kind": kind, "name": "target", "namespace": NS},
            },
        )
    selector = "involvedObject.name=target,involvedObject.kind==PersistentVolumeClaim"
    items = core.list_namespaced_event(NS, field_selector=selector).items
    assert [i.metadata.name for i in items] == ["e2"]
    core.create_namespaced_pod(
        NS,
        {
            "metadata": {"name": "p1"},
            "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "busybox"}]},
        },
    )
    core.create_namespaced_pod(
        NS,
        {"metadata": {"name": "p2"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
    )
    pods = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=node-1").items
    assert [p.metadata.name for p in pods] == ["p1"]
    pods = core.list_namespaced_pod(NS, field_selector="spec.nodeName=,status.phase=Pending")
    assert [p.metadata.name for p in pods.items] == ["p2"]
    code, body = error_of(lambda: core.list_namespaced_config_map(NS, field_selector="data.k=v"))
    assert (code, body["message"]) == (400, "field label not supported: data.k")


def test_pagination_with_limit_and_continue(core: client.CoreV1Api) -> None:
    for i in range(5):
        core.create_namespaced_config_map(NS, configmap(f"cm-{i}"))
    first = core.list_namespaced_config_map(NS, limit=2)
    assert [i.metadata.name for i in first.items] == ["cm-0", "cm-1"]
    assert first.metadata.remaining_item_count == 3 and first.metadata._continue
    core.create_namespaced_config_map(NS, configmap("other"))
    second = core.list_namespaced_config_map(NS, limit=2, _continue=first.metadata._continue)
    assert [i.metadata.name for i in second.items] == ["cm-2", "cm-3"]
    assert second.metadata.resource_version == first.metadata.resource_version
    third = core.list_namespaced_config_map(NS, limit=2, _continue=second.metadata._continue)
    assert [i.metadata.name for i in third.items] == ["cm-4", "other"]
    assert not third.metadata._continue
    code, _ = error_of(lambda: core.list_namespaced_config_map(NS, _continue="garbage!"))
    assert code == 400


def test_all_namespaces_list_envelope(core: client.CoreV1Api) -> None:
    core.create_namespace({"metadata": {"name": "team"}})
    for namespace in (NS, "team"):
        core.create_namespaced_persistent_volume_claim(namespace, pvc("data"))
    listing = raw_json(core.list_persistent_volume_claim_for_all_namespaces)
    assert (listing["kind"], listing["apiVersion"]) == ("PersistentVolumeClaimList", "v1")
    assert [(i["metadata"]["namespace"], i["kind"]) for i in listing["items"]] == [
        (NS, "PersistentVolumeClaim"),
        ("team", "PersistentVolumeClaim"),
    ]
    team = core.read_namespace("team")
    assert team.status.phase == "Active"
    phases = [n.status.phase for n in core.list_namespace().items]
    assert phases == ["Active"] * 4


# Updates and patches


def test_replace_with_stale_resource_version_conflicts(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_config_map(NS, configmap("a"))
    stale = created.to_dict()
    fresh = core.patch_namespaced_config_map("a", NS, {"data": {"k": "changed"}})
    stale["data"] = {"k": "lost update"}
    code, body = error_of(lambda: core.replace_namespaced_config_map("a", NS, stale))
    assert (code, body["reason"]) == (409, "Conflict")
    assert "the object has been modified" in body["message"]
    body_ok = fresh.to_dict()
    body_ok["data"] = {"k": "won"}
    body_ok["metadata"]["uid"] = "forged"
    replaced = core.replace_namespaced_config_map("a", NS, body_ok)
    assert replaced.data == {"k": "won"}
    assert replaced.metadata.uid == created.metadata.uid
    assert replaced.metadata.creation_timestamp == created.metadata.creation_timestamp
    unconditional = {"metadata": {"name": "a"}, "data": {"k": "blind"}}
    assert core.replace_namespaced_config_map("a", NS, unconditional).data == {"k": "blind"}


def test_status_subresource_is_isolated(api: ApiClient) -> None:
    batch = client.BatchV1Api(api)
    job = {
        "metadata": {"name": "j"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": "c", "image": "busybox"}],
                    "restartPolicy": "Never",
                }
            }
        },
        "status": {"active": 5},
    }
    created = raw_json(batch.create_namespaced_job, NS, job)
    assert "status" not in created and created["metadata"]["generation"] == 1
    body = dict(created, status={"active": 3})
    body["spec"]["parallelism"] = 4
    replaced = raw_json(batch.replace_namespaced_job, "j", NS, body)
    assert "status" not in replaced and replaced["spec"]["parallelism"] == 4
    assert replaced["metadata"]["generation"] == 2
    status_body = dict(replaced, status={"active": 2})
    status_body["spec"]["parallelism"] = 9
    updated = raw_json(batch.replace_namespaced_job_status, "j", NS, status_body)
    assert updated["status"] == {"active": 2} and updated["spec"]["parallelism"] == 4
    assert updated["metadata"]["generation"] == 2
    patched = batch.patch_namespaced_job_status(
        "j", NS, {"status": {"succeeded": 1}, "metadata": {"labels": {"x": "y"}}}
    )
    assert patched.status.succeeded == 1 and patched.status.active == 2
    assert not patched.metadata.labels
    patched = batch.patch_namespaced_job("j", NS, {"status": {"failed": 7}})
    assert patched.status.failed is None


def test_merge_strategic_and_json_patches(api: ApiClient) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    core.create_namespaced_config_map(NS, {"metadata": {"name": "a"}, "data": {"x": "1", "y": "2"}})
    merged = core.patch_namespaced_config_map(
        "a", NS, {"data": {"x": None, "z": "3"}}, _content_type=MERGE
    )
    assert merged.data == {"y": "2", "z": "3"}
    patched = core.patch_namespaced_config_map(
        "a",
        NS,
        [
            {"op": "add", "path": "/metadata/labels", "value": {"a/b": "c"}},
            {"op": "replace", "path": "/data/y", "value": "22"},
            {"op": "move", "from": "/data/z", "path": "/data/w"},
            {"op": "test", "path": "/data/w", "value": "3"},
        ],
    )
    assert patched.data == {"y": "22", "w": "3"} and patched.metadata.labels == {"a/b": "c"}
    code, body = error_of(
        lambda: core.patch_namespaced_config_map(
            "a", NS, [{"op": "test", "path": "/data/y", "value": "nope"}]
        )
    )
    assert (code, body["reason"]) == (422, "Invalid")
    apps.create_namespaced_deployment(
        NS,
        deployment(
            "d",
            containers=[{"name": "app", "image": "app:1"}, {"name": "sidecar", "image": "side:1"}],
        ),
    )
    strategic = apps.patch_namespaced_deployment(
        "d",
        NS,
        {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "side:2"}]}}}},
    )
    containers = [(c.name, c.image) for c in strategic.spec.template.spec.containers]
    assert containers == [("app", "app:1"), ("sidecar", "side:2")]
    assert strategic.metadata.generation == 2
    replaced = apps.patch_namespaced_deployment(
        "d",
        NS,
        {"spec": {"template": {"spec": {"containers": [{"name": "only", "image": "o:1"}]}}}},
        _content_type=MERGE,
    )
    assert [c.name for c in replaced.spec.template.spec.containers] == ["only"]


def test_patch_with_unknown_media_type_is_415(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map(NS, configmap("a"))
    code, body = error_of(
        lambda: core.patch_namespaced_config_map(
            "a", NS, {"data": {}}, _content_type="application/json"
        )
    )
    assert (code, body["reason"]) == (415, "UnsupportedMediaType")


def test_create_rejects_resource_version_and_honours_dry_run(core: client.CoreV1Api) -> None:
    code, body = error_of(
        lambda: core.create_namespaced_config_map(
            NS, {"metadata": {"name": "a", "resourceVersion": "7"}}
        )
    )
    assert code == 500
    assert body["message"] == "resourceVersion should not be set on objects to be created"
    assert "reason" not in body
    dry = core.create_namespaced_config_map(NS, configmap("a"), dry_run="All")
    assert dry.metadata.uid and not dry.metadata.resource_version
    assert core.list_namespaced_config_map(NS).items == []
    created = core.create_namespaced_config_map(NS, configmap("a"))
    core.patch_namespaced_config_map("a", NS, {"data": {"k": "dry"}}, dry_run="All")
    assert core.read_namespaced_config_map("a", NS).data == {"k": "v"}
    stale = {"preconditions": {"uid": "someone-else"}}
    code, body = error_of(lambda: core.delete_namespaced_config_map("a", NS, body=stale))
    assert (code, body["reason"]) == (409, "Conflict")
    fresh = {"preconditions": {"uid": created.metadata.uid}}
    core.delete_namespaced_config_map("a", NS, body=fresh)
    assert core.list_namespaced_config_map(NS).items == []


# Deletion


def test_finalizers_defer_deletion(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_config_map(
        NS, {"metadata": {"name": "held", "finalizers": ["vessel.io/protect"]}}
    )
    start = created.metadata.resource_version
    # Client 37 types DELETE responses as plain dicts: the server may send an object or a Status.
    pending = core.delete_namespaced_config_map("held", NS)
    assert pending["metadata"]["deletionTimestamp"]
    held = core.read_namespaced_config_map("held", NS)
    assert held.metadata.deletion_timestamp is not None
    assert held.metadata.finalizers == ["vessel.io/protect"]
    core.patch_namespaced_config_map(
        "held", NS, {"metadata": {"finalizers": None}}, _content_type=MERGE
    )
    code, _ = error_of(lambda: core.read_namespaced_config_map("held", NS))
    assert code == 404
    events = watch_events(
        core.list_namespaced_config_map, NS, resource_version=start, timeout_seconds=1
    )
    assert names(events) == [("MODIFIED", "held"), ("DELETED", "held")]
    assert events[0][1]["metadata"]["deletionTimestamp"]
    plain = core.create_namespaced_config_map(NS, configmap("plain"))
    deleted = raw_json(core.delete_namespaced_config_map, "plain", NS)
    assert deleted["metadata"]["uid"] == plain.metadata.uid
    assert int(deleted["metadata"]["resourceVersion"]) > int(plain.metadata.resource_version)


def test_deleting_a_namespace_deletes_its_contents(api: ApiClient) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    core.create_namespace({"metadata": {"name": "doomed"}})
    core.create_namespaced_config_map("doomed", configmap("cm"))
    core.create_namespaced_persistent_volume_claim("doomed", pvc("data"))
    apps.create_namespaced_deployment("doomed", deployment("web"))
    core.create_namespaced_config_map(NS, configmap("survivor"))
    start = core.list_namespace().metadata.resource_version
    core.delete_namespace("doomed")
    code, _ = error_of(lambda: core.read_namespace("doomed"))
    assert code == 404
    assert (
        core.list_config_map_for_all_namespaces(field_selector="metadata.namespace=doomed").items
        == []
    )
    assert [c.metadata.name for c in core.list_namespaced_config_map(NS).items] == ["survivor"]
    deleted = {
        (kind_name, obj["metadata"]["name"])
        for func, kind_name in (
            (core.list_config_map_for_all_namespaces, "cm"),
            (core.list_persistent_volume_claim_for_all_namespaces, "pvc"),
            (apps.list_deployment_for_all_namespaces, "deploy"),
            (core.list_namespace, "ns"),
        )
        for kind, obj in watch_events(func, resource_version=start, timeout_seconds=1)
        if kind == "DELETED"
    }
    assert deleted == {("cm", "cm"), ("pvc", "data"), ("deploy", "web"), ("ns", "doomed")}
    code, _ = error_of(lambda: core.create_namespaced_config_map("doomed", configmap("x")))
    assert code == 404


def test_namespace_waits_for_finalized_contents(core: client.CoreV1Api) -> None:
    core.create_namespace({"metadata": {"name": "slow"}})
    core.create_namespaced_config_map(
        "slow", {"metadata": {"name": "held", "finalizers": ["vessel.io/x"]}}
    )
    core.delete_namespace("slow")
    assert core.read_namespace("slow").status.phase == "Terminating"
    code, body = error_of(lambda: core.create_namespaced_config_map("slow", configmap("new")))
    assert (code, body["reason"]) == (403, "Forbidden")
    core.patch_namespaced_config_map(
        "held", "slow", [{"op": "remove", "path": "/metadata/finalizers"}]
    )
    code, _ = error_of(lambda: core.read_namespace("slow"))
    assert code == 404


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


def wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


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


# Emulated controllers


def test_pv_binder_binds_and_releases(api: ApiClient) -> None:
    core, storage = client.CoreV1Api(api), client.StorageV1Api(api)
    storage.create_storage_class(
        {
            "metadata": {
                "name": "vessel",
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": "vessel.io/csi",
        }
    )
    claim = core.create_namespaced_persistent_volume_claim(NS, pvc("data", storage_class=None))
    assert claim.status.phase == "Pending"
    assert claim.spec.storage_class_name == "vessel"
    claim = core.read_namespaced_persistent_volume_claim("data", NS)
    assert claim.metadata.annotations["volume.kubernetes.io/storage-provisioner"] == (
        "vessel.io/csi"
    )
    start = claim.metadata.resource_version
    volume = core.create_persistent_volume(pv("pv-1", claim_ref=("default", "data")))
    assert volume.status.phase == "Available"
    bound_pv = core.read_persistent_volume("pv-1")
    bound = core.read_namespaced_persistent_volume_claim("data", NS)
    assert bound_pv.status.phase == "Bound"
    assert bound_pv.spec.claim_ref.uid == claim.metadata.uid
    assert bound.spec.volume_name == "pv-1"
    assert bound.status.phase == "Bound"
    assert bound.status.capacity == {"storage": "5Gi"}
    assert bound.status.access_modes == ["ReadWriteOnce"]
    events = watch_events(
        core.list_namespaced_persistent_volume_claim, NS, resource_version=start, timeout_seconds=1
    )
    assert [kind for kind, _ in events] == ["MODIFIED", "MODIFIED"]
    assert events[-1][1]["status"]["phase"] == "Bound"
    core.delete_namespaced_persistent_volume_claim("data", NS)
    assert core.read_persistent_volume("pv-1").status.phase == "Released"


def test_pv_binder_binds_a_claim_created_after_its_volume(core: client.CoreV1Api) -> None:
    core.create_persistent_volume(pv("pv-2", claim_ref=(NS, "late")))
    assert core.read_persistent_volume("pv-2").status.phase == "Available"
    core.create_namespaced_persistent_volume_claim(NS, pvc("late"))
    assert core.read_namespaced_persistent_volume_claim("late", NS).status.phase == "Bound"
    core.create_namespaced_persistent_volume_claim(NS, pvc("taken", volume_name="elsewhere"))
    core.create_persistent_volume(pv("pv-3", claim_ref=(NS, "taken")))
    assert core.read_persistent_volume("pv-3").status.phase == "Available"


def test_workloads_report_ready(api: ApiClient) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(NS, deployment("web", replicas=3))
    status = apps.read_namespaced_deployment("web", NS).status
    assert (status.replicas, status.ready_replicas, status.available_replicas) == (3, 3, 3)
    assert status.observed_generation == 1
    apps.patch_namespaced_deployment("web", NS, {"spec": {"replicas": 0}})
    status = apps.read_namespaced_deployment("web", NS).status
    assert (status.replicas, status.ready_replicas, status.observed_generation) == (0, 0, 2)
    apps.create_namespaced_stateful_set(
        NS,
        {
            "metadata": {"name": "db"},
            "spec": {
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": {
                    "metadata": {"labels": {"app": "db"}},
                    "spec": {"containers": [{"name": "db", "image": "db:1"}]},
                },
            },
        },
    )
    sts = apps.read_namespaced_stateful_set("db", NS).status
    assert (sts.replicas, sts.ready_replicas) == (1, 1)


def test_storage_protection_finalizers(core: client.CoreV1Api) -> None:
    core.create_namespaced_persistent_volume_claim(NS, pvc("data"))
    core.create_persistent_volume(pv("pv-1", claim_ref=(NS, "data")))
    volume = core.read_persistent_volume("pv-1")
    assert volume.metadata.finalizers == ["kubernetes.io/pv-protection"]
    core.create_namespaced_pod(
        NS,
        {
            "metadata": {"name": "user"},
            "spec": {
                "containers": [{"name": "c", "image": "busybox"}],
                "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "data"}}],
            },
        },
    )
    core.delete_persistent_volume("pv-1")
    core.delete_namespaced_persistent_volume_claim("data", NS)
    claim = core.read_namespaced_persistent_volume_claim("data", NS)
    assert claim.metadata.deletion_timestamp is not None
    assert claim.metadata.finalizers == ["kubernetes.io/pvc-protection"]
    assert core.read_persistent_volume("pv-1").status.phase == "Bound"
    core.delete_namespaced_pod("user", NS)
    code, _ = error_of(lambda: core.read_namespaced_persistent_volume_claim("data", NS))
    assert code == 404
    code, _ = error_of(lambda: core.read_persistent_volume("pv-1"))
    assert code == 404


def test_controllers_can_be_disabled(tmp_path: Path) -> None:
    with running(tmp_path, controllers=False) as (_, api):
        core = client.CoreV1Api(api)
        core.create_namespaced_persistent_volume_claim(NS, pvc("data"))
        core.create_persistent_volume(pv("pv-1", claim_ref=(NS, "data")))
        assert core.read_namespaced_persistent_volume_claim("data", NS).status.phase == ("Pending")
        client.AppsV1Api(api).create_namespaced_deployment(NS, deployment("web"))
        assert client.AppsV1Api(api).read_namespaced_deployment("web", NS).status is None


# Auth, discovery, CLI, throughput


def test_wrong_token_is_unauthorized(tmp_path: Path) -> None:
    with running(tmp_path, token="right") as (emulator, _):
        kubeconfig = tmp_path / "bad-kubeconfig"
        emulator.write_kubeconfig(kubeconfig, context="bad")
        document = json.loads(kubeconfig.read_text())
        assert document["current-context"] == "bad"
        document["users"][0]["user"]["token"] = "wrong"
        kubeconfig.write_text(json.dumps(document))
        with config.new_client_from_config(config_file=str(kubeconfig)) as api:
            code, body = error_of(lambda: client.CoreV1Api(api).list_namespace())
        assert code == 401
        assert body == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Unauthorized",
            "reason": "Unauthorized",
            "code": 401,
        }


def test_dynamic_client_discovery(api: ApiClient, tmp_path: Path) -> None:
    dyn = dynamic.DynamicClient(api, cache_file=str(tmp_path / "discovery.json"))
    assert dyn.version["kubernetes"]["major"] == "1"
    snapshots = dyn.resources.get(api_version="snapshot.storage.k8s.io/v1", kind="VolumeSnapshot")
    assert snapshots.namespaced and snapshots.name == "volumesnapshots"
    snapshots.create(
        namespace=NS,
        body={
            "apiVersion": "snapshot.storage.k8s.io/v1",
            "kind": "VolumeSnapshot",
            "metadata": {"name": "snap"},
            "spec": {"source": {"persistentVolumeClaimName": "data"}},
        },
    )
    fetched = snapshots.get(name="snap", namespace=NS)
    assert fetched.spec.source.persistentVolumeClaimName == "data"
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    deployments.create(
        namespace=NS, body=dict(deployment("web"), apiVersion="apps/v1", kind="Deployment")
    )
    listed = deployments.get(namespace=NS)
    assert [item.metadata.name for item in listed.items] == ["web"]
    pvs = dyn.resources.get(api_version="v1", kind="PersistentVolume")
    assert not pvs.namespaced
    assert "status" in pvs.subresources
    kinds = {r.kind for r in dyn.resources.search(api_version="rbac.authorization.k8s.io/v1")}
    assert {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"} <= kinds


def test_cli_runs_until_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "cli-kubeconfig"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vessel.emulators.kube",
            "--port",
            "0",
            "--kubeconfig",
            str(kubeconfig),
            "--context",
            "cli",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while not kubeconfig.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert json.loads(kubeconfig.read_text())["current-context"] == "cli"
        with config.new_client_from_config(config_file=str(kubeconfig)) as api:
            names_ = [n.metadata.name for n in client.CoreV1Api(api).list_namespace().items]
        assert names_ == ["default", "kube-public", "kube-system"]
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert b"kube emulator serving http://127.0.0.1:" in out


def test_create_throughput(core: client.CoreV1Api) -> None:
    count = 300
    started = time.perf_counter()
    for i in range(count):
        core.create_namespaced_config_map(NS, {"metadata": {"name": f"perf-{i}"}})
    rate = count / (time.perf_counter() - started)
    # The target is 500/s; the floor is lower so a loaded CI machine does not flake.
    assert rate > 200, f"{rate:.0f} creates/s"


# Builders


def pvc(name: str, storage_class: str | None = "vessel", volume_name: str | None = None) -> Obj:
    spec: Obj = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}}
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    if volume_name is not None:
        spec["volumeName"] = volume_name
    return {"metadata": {"name": name}, "spec": spec}


def pv(name: str, claim_ref: tuple[str, str]) -> Obj:
    return {
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": "5Gi"},
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "vessel",
            "persistentVolumeReclaimPolicy": "Delete",
            "claimRef": {"namespace": claim_ref[0], "name": claim_ref[1]},
            "csi": {"driver": "vessel.io/csi", "volumeHandle": name},
        },
    }


def deployment(name: str, replicas: int | None = None, containers: list[Obj] | None = None) -> Obj:
    spec: Obj = {
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": containers or [{"name": name, "image": f"{name}:1"}]},
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {"metadata": {"name": name}, "spec": spec}
