"""What kubectl reads besides objects: Table responses and the OpenAPI v2 document, checked
through the official client so they are covered where no kubectl is installed."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from tests.emulators.support import NS, pv, pvc
from vessel_cli.humanize import age as human_duration

pytestmark = pytest.mark.timeout(30)
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def _get(api: ApiClient, path: str, accept: str = TABLE, **query: str) -> bytes:
    """The raw body of a GET, with the client's own URL, TLS trust and token."""
    method, url, headers, body, post = api.param_serialize(
        "GET",
        path,
        query_params=list(query.items()),
        header_params={"Accept": accept},
        auth_settings=["BearerToken"],
    )
    response = api.call_api(method, url, headers, body, post)
    data: bytes = response.read()
    assert response.status == 200, data
    return data


def test_lists_and_objects_come_as_tables_when_asked(api: ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_persistent_volume(pv("pv-a", (NS, "a")))
    core.create_namespaced_persistent_volume_claim(NS, pvc("a"))
    listed = json.loads(_get(api, "/api/v1/persistentvolumeclaims"))
    assert (listed["kind"], listed["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    assert listed["metadata"]["resourceVersion"].isdigit()
    columns = [(c["name"], c["priority"]) for c in listed["columnDefinitions"]]
    assert columns[:5] == [
        ("Name", 0),
        ("Status", 0),
        ("Volume", 0),
        ("Capacity", 0),
        ("Access Modes", 0),
    ]
    assert ("VolumeMode", 1) in columns
    [row] = listed["rows"]
    assert row["cells"][:5] == ["a", "Bound", "pv-a", "5Gi", "RWO"]
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"]["namespace"] == NS
    assert "spec" not in row["object"]
    whole = json.loads(
        _get(api, f"/api/v1/namespaces/{NS}/persistentvolumeclaims/a", includeObject="Object")
    )
    assert whole["rows"][0]["object"]["spec"]["volumeName"] == "pv-a"
    bare = json.loads(_get(api, "/api/v1/persistentvolumes", includeObject="None"))
    assert "object" not in bare["rows"][0] and bare["rows"][0]["cells"][5] == f"{NS}/a"
    plain = json.loads(_get(api, "/api/v1/persistentvolumes", accept="application/json"))
    assert plain["kind"] == "PersistentVolumeList"


def test_kinds_without_a_printer_get_name_and_age(api: ApiClient) -> None:
    client.CoreV1Api(api).create_namespaced_service_account(NS, {"metadata": {"name": "robot"}})
    table = json.loads(_get(api, f"/api/v1/namespaces/{NS}/serviceaccounts"))
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Age"]
    assert [r["cells"][0] for r in table["rows"]] == ["robot"]


def test_watch_events_carry_tables(api: ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(NS, {"metadata": {"name": "cm"}, "data": {"a": "1"}})
    body = _get(api, f"/api/v1/namespaces/{NS}/configmaps", watch="true", timeoutSeconds="1")
    [event] = [json.loads(line) for line in body.splitlines()]
    assert event["type"] == "ADDED" and event["object"]["kind"] == "Table"
    assert event["object"]["rows"][0]["cells"][:2] == ["cm", 1]


def test_openapi_v2_lists_a_patch_per_kind_and_no_field_validation(api: ApiClient) -> None:
    document = json.loads(_get(api, "/openapi/v2", accept="application/json"))
    patch = document["paths"]["/api/v1/namespaces/{namespace}/persistentvolumeclaims/{name}"]
    gvk = patch["patch"]["x-kubernetes-group-version-kind"]
    assert gvk == {"group": "", "version": "v1", "kind": "PersistentVolumeClaim"}
    assert "parameters" not in patch and document["definitions"] == {}
    protobuf = _get(
        api, "/openapi/v2", accept="application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
    )
    assert protobuf.startswith(b"\n\x032.0") and b"x-kubernetes-group-version-kind" in protobuf


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(-5, "<invalid>"), (-1, "0s"), (59, "59s"), (119, "119s"), (150, "2m30s"), (600, "10m"),
     (3 * 3600, "3h"), (3 * 3600 + 60 * 5, "3h5m"), (30 * 3600, "30h"), (50 * 3600, "2d2h"),
     (10 * 86400, "10d"), (800 * 86400, "2y70d"), (3000 * 86400, "8y")],
)  # fmt: skip
def test_ages_are_printed_as_the_real_server_prints_them(seconds: int, shown: str) -> None:
    assert human_duration(seconds) == shown
