"""The Kubernetes API emulator's request handling: CRUD, errors, lists, patches, deletion."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from tests.emulators.support import (
    MERGE,
    NS,
    configmap,
    deployment,
    error_of,
    names,
    pvc,
    raw_json,
    watch_events,
)

pytestmark = pytest.mark.timeout(30)


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
