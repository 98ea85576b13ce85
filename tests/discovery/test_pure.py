"""Pure parts: diffs, kubeconfig checks and storage, health conditions, selectors, slimming."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from services.discovery.credentials import CredentialStore, KubeconfigError, parse, redact
from services.discovery.diff import app_diff
from services.discovery.grouping import workload_selects
from services.discovery.health import ClusterHealth
from services.discovery.kinds import BY_KIND, slim
from services.discovery.userapps import selection_matches
from tests.discovery import objects as o
from tests.discovery.kubeproxy import kubeconfig_text
from vessel.contracts.events import AppRecord
from vessel.contracts.models import (
    ClaimInfo,
    LabelRequirement,
    NamespaceSelection,
    ResourceRef,
    WorkloadStatus,
)
from vessel.kube import errors


def app(**fields: object) -> AppRecord:
    base: dict[str, object] = {
        "cluster": "c",
        "namespace": "ns",
        "name": "web",
        "grouping": "label",
        "state": "Available",
    }
    return AppRecord.model_validate(base | fields)


def test_diff_names_resources_fields_workloads_and_claims() -> None:
    cm = ResourceRef(api_version="v1", kind="ConfigMap", name="cfg", namespace="ns")
    other = ResourceRef(api_version="v1", kind="Secret", name="s", namespace="elsewhere")
    before = app(
        resources=[cm],
        workload_status=[WorkloadStatus(kind="Deployment", name="web", desired=3, ready=3)],
        claims=[ClaimInfo(name="data", requested_bytes=1, phase="Bound")],
    )
    after = app(
        state="Failed",
        resources=[other],
        reasons=["Deployment web: 1/3 ready"],
        workload_status=[WorkloadStatus(kind="Deployment", name="web", desired=3, ready=1)],
        claims=[ClaimInfo(name="data", requested_bytes=2, phase="Bound")],
    )
    diff = app_diff(before, after)
    assert diff.added == ["Secret/elsewhere/s"] and diff.removed == ["ConfigMap/cfg"]
    assert diff.changed == {
        "state": "Available -> Failed",
        "reasons": "- -> Deployment web: 1/3 ready",
        "Deployment/web": "ready 3/3 -> 1/3",
        "PersistentVolumeClaim/data": "requested_bytes 1 -> 2",
    }


KUBECONFIG_PROBLEMS = [
    ("a: [b", "kc: not valid YAML at line 1, column 6"),
    ("- 1\n- 2", "kc: not a kubeconfig (expected a mapping)"),
    ("current-context: x\n", "kc: context 'x' is not defined"),
    (
        "current-context: x\ncontexts: [{name: x, context: {cluster: y}}]\n",
        "kc: cluster 'y' is not defined",
    ),
    (
        "current-context: x\ncontexts: [{name: x, context: {cluster: y}}]\n"
        "clusters: [{name: y, cluster: {server: ftp://h}}]\n",
        "kc: cluster 'y' has no http(s) server URL",
    ),
    (
        "current-context: x\ncontexts: [{name: x, context: {cluster: y, user: u}}]\n"
        "clusters: [{name: y, cluster: {server: 'https://h'}}]\n",
        "kc: user 'u' is not defined",
    ),
]


@pytest.mark.parametrize(("text", "message"), KUBECONFIG_PROBLEMS)
def test_kubeconfig_problems_name_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(KubeconfigError) as caught:
        parse(text, "kc")
    assert str(caught.value) == message


def test_a_yaml_error_never_quotes_the_file() -> None:
    text = "users:\n- name: u\n  user:\n    token: tok-12345\n  bad: [\n"
    with pytest.raises(KubeconfigError) as caught:
        parse(text, "kc")
    assert "tok-12345" not in str(caught.value)


def test_a_good_kubeconfig_gives_its_server_and_secrets_to_redact() -> None:
    info = parse(kubeconfig_text("https://k:6443", "tok-abcdef"))
    assert info.server == "https://k:6443" and info.secrets == ["tok-abcdef"]
    assert redact("failed with tok-abcdef", info.secrets) == "failed with [redacted]"


def test_stored_kubeconfigs_are_private_and_forgotten(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "state")
    path = store.store_inline("c1", "secret text")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert store.resolve("c1") == path
    elsewhere = tmp_path / "kc.yaml"
    store.store_reference("c1", elsewhere)  # a reference replaces the inline copy
    assert not path.exists() and store.resolve("c1") == elsewhere.resolve()
    store.forget("c1")
    assert store.resolve("c1") is None


def test_an_unusable_state_directory_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(KubeconfigError, match=f"state directory {blocker}/clusters cannot be used"):
        CredentialStore(blocker).store_inline("c1", "x")


def test_health_conditions_and_state() -> None:
    changes: list[int] = []
    health = ClusterHealth("https://k", lambda: changes.append(1))
    assert health.state() == "Connecting"
    health.contact(BY_KIND["Pod"])
    assert health.state() == "Available" and len(changes) == 1
    health.failed(BY_KIND["Secret"], errors.Forbidden("c: list Secret: HTTP 403 Forbidden"))
    health.failed(BY_KIND["CronJob"], errors.NotFound("c: list CronJob: kind not served"))
    assert health.state() == "Available"
    assert [c.message for c in health.conditions()] == [
        "RBAC forbids listing or watching secrets (HTTP 403)",
        "the API server does not serve cronjobs.batch",
    ]
    health.failed(BY_KIND["Pod"], errors.Unauthorized("c: list Pod: HTTP 401 Unauthorized"))
    assert health.state() == "Unreachable"
    assert health.reason().startswith(
        "API server https://k rejected the kubeconfig's credentials (HTTP 401 Unauthorized); "
    )
    health.contact(BY_KIND["Pod"])
    assert health.state() == "Available" and len(health.conditions()) == 2
    for kind in BY_KIND.values():
        health.failed(kind, errors.Forbidden("c: HTTP 403"))
    assert health.state() == "Unreachable"  # nothing at all can be listed


def test_selectors() -> None:
    sel = NamespaceSelection(
        namespace="ns",
        match_labels={"team": "a"},
        match_expressions=[
            LabelRequirement(key="tier", operator="NotIn", values=["db"]),
            LabelRequirement(key="legacy", operator="DoesNotExist"),
        ],
    )
    assert selection_matches(sel, o.simple("ConfigMap", "x", "ns", {"team": "a"}))
    assert not selection_matches(sel, o.simple("ConfigMap", "x", "ns", {"team": "a", "tier": "db"}))
    assert not selection_matches(sel, o.simple("ConfigMap", "x", "other", {"team": "a"}))
    assert not selection_matches(sel, o.simple("ConfigMap", "x", "ns", {"team": "a", "legacy": ""}))
    exists = {"matchExpressions": [{"key": "a", "operator": "Exists"}]}
    assert workload_selects(exists, {"a": "1"}) and not workload_selects(exists, {})
    assert not workload_selects({}, {"a": "1"})  # an empty selector selects nothing
    assert not workload_selects({"matchExpressions": [{"key": "a", "operator": "Bad"}]}, {})


def test_slim_copies_keep_only_what_discovery_reads() -> None:
    secret = slim(BY_KIND["Secret"], o.secret("s", "ns", {"k": "v"}, {"app": "x"}))
    assert secret == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "ns", "labels": {"app": "x"}},
        "type": "Opaque",
    }
    cm = o.simple(
        "ConfigMap", "c", "ns", annotations={"big": "x" * 1000, "meta.helm.sh/release-name": "r"}
    )
    assert slim(BY_KIND["ConfigMap"], cm)["metadata"]["annotations"] == {
        "meta.helm.sh/release-name": "r"
    }
    pod = o.pod("p", "ns", {})
    pod["status"] = o.crash_status()
    assert slim(BY_KIND["Pod"], pod)["status"]["containerStatuses"] == [
        {"name": "main", "ready": False, "waiting": "CrashLoopBackOff"}
    ]
