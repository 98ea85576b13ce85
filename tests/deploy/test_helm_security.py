"""Checks of the Helm chart charts/vessel as rendered: security and configuration.

Reads the rendered objects for security contexts, resource limits, host access, mounts,
service account tokens and RBAC (least privilege, no wildcards, what the services call);
and for the configuration, which is loaded the way the services load it (network
policies, disruption budgets and monitoring: `test_helm_network.py`).
Rendering and shared helpers: `tests/deploy/chart_support.py`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.discovery.inventory import KINDS as DISCOVERY_KINDS
from services.discovery.kinds import WATCHED
from services.protection.mobility import SCALABLE
from tests.deploy.chart_support import (
    COMPONENTS,
    EXPECTED_NAMESPACED_RBAC,
    EXPECTED_RBAC,
    NAMESPACE,
    NODE_AGENTS,
    OPENS_BUCKETS,
    PREFIX,
    SA_DIR,
    Permission,
    Rendering,
    _containers,
    _env,
    _image_uid,
    _pods,
)
from vessel.config import BucketConfig, load_settings

# --- security ----------------------------------------------------------------------------


def test_containers_have_limits_and_a_restricted_security_context(
    renderings: tuple[Rendering, ...],
) -> None:
    uid = _image_uid()
    for r in renderings:
        for component, _workload, pod in _pods(r):
            where = f"{r.case}: {component}"
            spec = pod["spec"]
            assert not spec.get("hostNetwork") and not spec.get("hostPID"), where
            assert not spec.get("hostIPC"), where
            pod_ctx = spec.get("securityContext", {})
            assert pod_ctx.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
            for container in _containers(pod):
                resources = container.get("resources", {})
                for kind in ("requests", "limits"):
                    for resource in ("cpu", "memory"):
                        assert resources.get(kind, {}).get(resource), (
                            f"{where}: no {kind}.{resource}"
                        )
                ctx = container.get("securityContext", {})
                assert ctx.get("readOnlyRootFilesystem") is True, where
                if component in NODE_AGENTS:
                    continue
                effective = {**pod_ctx, **ctx}
                assert effective.get("runAsNonRoot") is True, f"{where}: may run as root"
                assert effective.get("runAsUser") == uid, f"{where}: not the image's user {uid}"
                assert ctx.get("allowPrivilegeEscalation") is False, where
                assert ctx.get("privileged", False) is False, where
                assert ctx.get("capabilities", {}).get("drop") == ["ALL"], where
                assert not ctx.get("capabilities", {}).get("add"), f"{where}: adds capabilities"
                for volume in spec.get("volumes", []):
                    assert "hostPath" not in volume, f"{where}: mounts a host path"


def test_node_agents_get_only_the_privileges_they_need(
    renderings: tuple[Rendering, ...],
) -> None:
    for r in renderings:
        for component, _workload, pod in _pods(r):
            if component not in NODE_AGENTS:
                continue
            (container,) = pod["spec"]["containers"]
            ctx = container["securityContext"]
            assert ctx["runAsUser"] == 0, f"{r.case}: {component} runs as root"
            if component == "provisioner" or r.effective["mover"]["privileged"]:
                assert ctx.get("privileged") is True, f"{r.case}: {component}"
            else:
                assert ctx.get("privileged") is False, f"{r.case}: mover"
                assert ctx.get("allowPrivilegeEscalation") is False, f"{r.case}: mover"
                caps = ctx.get("capabilities", {})
                assert caps.get("drop") == ["ALL"], f"{r.case}: mover keeps capabilities"
                assert set(caps.get("add", [])) <= {"DAC_OVERRIDE", "FOWNER", "FSETID"}, caps


def test_node_agents_mount_every_backend_at_its_host_path(
    renderings: tuple[Rendering, ...],
) -> None:
    propagation = {"provisioner": "Bidirectional", "mover": "HostToContainer"}
    for r in renderings:
        backends = r.effective["nodeAgents"]["backends"]
        label = r.effective["nodeAgents"]["storageNodeLabel"]
        for component, _workload, pod in _pods(r):
            if component not in NODE_AGENTS:
                continue
            where = f"{r.case}: {component}"
            volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
            (container,) = pod["spec"]["containers"]
            mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
            host_paths = [v["hostPath"]["path"] for v in volumes.values() if "hostPath" in v]
            assert sorted(host_paths) == sorted(b["path"] for b in backends), where
            for backend in backends:
                mount = mounts.get(backend["path"])
                assert mount, f"{where}: {backend['path']} is not mounted"
                assert volumes[mount["name"]]["hostPath"]["path"] == backend["path"], where
                assert mount.get("mountPropagation") == propagation[component], where
                assert not mount.get("readOnly"), f"{where}: {backend['path']} is read-only"
                expected = "Directory" if backend["type"] == "btrfs" else "DirectoryOrCreate"
                assert volumes[mount["name"]]["hostPath"]["type"] == expected, where
            if label:
                assert pod["spec"].get("nodeSelector", {}).get(label) == "true", where


def test_service_account_tokens_only_where_the_api_is_called(
    renderings: tuple[Rendering, ...],
) -> None:
    for r in renderings:
        accounts = {sa["metadata"]["name"]: sa for sa in r.of_kind("ServiceAccount")}
        assert len(accounts) == len(r.components), f"{r.case}: one ServiceAccount per service"
        for sa in accounts.values():
            assert sa.get("automountServiceAccountToken") is False, sa["metadata"]["name"]
        for component, _workload, pod in _pods(r):
            spec = pod["spec"]
            assert spec["serviceAccountName"] == r.name(component), f"{r.case}: {component}"
            wants = r.uses_kube_api(component)
            assert spec.get("automountServiceAccountToken") is wants, f"{r.case}: {component}"


def _permissions(rules: list[dict[str, Any]]) -> set[Permission]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }


def test_rbac_has_no_wildcards_or_escalation(renderings: tuple[Rendering, ...]) -> None:
    for r in renderings:
        for role in r.of_kind("ClusterRole") + r.of_kind("Role"):
            assert "aggregationRule" not in role, role["metadata"]["name"]
            for rule in role.get("rules", []):
                where = f"{r.case}: {role['metadata']['name']}: {rule}"
                assert not rule.get("nonResourceURLs"), where
                assert not rule.get("resourceNames") or "*" not in rule["resourceNames"], where
                for field in ("apiGroups", "resources", "verbs"):
                    assert rule.get(field), f"{where}: no {field}"
                    assert not any("*" in item for item in rule[field]), f"{where}: wildcard"
                risky = {"escalate", "bind", "impersonate"} & set(rule["verbs"])
                assert not risky, f"{where}: {risky}"


def _differences(granted: dict[str, set[Permission]], expected: dict[str, set[Permission]]) -> str:
    return "\n".join(
        f"{c}: extra {sorted(granted.get(c, set()) - expected.get(c, set()))}, "
        f"missing {sorted(expected.get(c, set()) - granted.get(c, set()))}"
        for c in COMPONENTS
        if granted.get(c, set()) != expected.get(c, set())
    )


def test_rbac_is_least_privilege(renderings: tuple[Rendering, ...]) -> None:
    for r in renderings:
        roles = {
            (o["kind"], o["metadata"]["name"]): o
            for o in r.of_kind("ClusterRole") + r.of_kind("Role")
        }
        cluster_wide: dict[str, set[Permission]] = {}
        namespaced: dict[str, set[Permission]] = {}
        for binding in r.of_kind("ClusterRoleBinding") + r.of_kind("RoleBinding"):
            ref = binding["roleRef"]
            role = roles.get((ref["kind"], ref["name"]))
            assert role, f"{r.case}: {binding['metadata']['name']} binds an unknown role"
            # A RoleBinding grants only in its own namespace: the release's (Helm sets it).
            granted = cluster_wide if binding["kind"] == "ClusterRoleBinding" else namespaced
            for subject in binding["subjects"]:
                assert subject["kind"] == "ServiceAccount", subject
                assert subject["namespace"] == NAMESPACE, subject
                component = subject["name"].removeprefix(PREFIX)
                granted.setdefault(component, set()).update(_permissions(role["rules"]))
        expected = {c: p for c, p in EXPECTED_RBAC.items() if r.uses_kube_api(c)}
        expected_here = {c: p for c, p in EXPECTED_NAMESPACED_RBAC.items() if r.uses_kube_api(c)}
        assert cluster_wide == expected, (
            f"{r.case}: cluster-wide RBAC differs from the least each service needs:\n"
            + _differences(cluster_wide, expected)
        )
        assert namespaced == expected_here, (
            f"{r.case}: RBAC in the release namespace differs from the least needed:\n"
            + _differences(namespaced, expected_here)
        )
        bound = {
            b["roleRef"]["name"] for b in r.of_kind("ClusterRoleBinding") + r.of_kind("RoleBinding")
        }
        unused = {name for (_kind, name) in roles} - bound
        assert not unused, f"{r.case}: roles bound to no one: {unused}"


def test_rbac_covers_what_the_services_call() -> None:
    """The expected RBAC above against the code: the kinds discovery watches, the calls it
    makes for protection as the cluster agent, the provisioner's."""
    for api_version, kind in DISCOVERY_KINDS:
        group = api_version.rpartition("/")[0]
        resource = kind.lower() + "s"
        for verb in ("list", "watch"):
            assert (group, resource, verb) in EXPECTED_RBAC["discovery"], (api_version, kind)
    for needed in [
        ("", "persistentvolumeclaims", "watch"),
        ("", "persistentvolumeclaims", "patch"),  # revert in place
        ("storage.k8s.io", "storageclasses", "list"),
        ("", "persistentvolumes", "create"),
        ("", "events", "create"),
        ("snapshot.storage.k8s.io", "volumesnapshots", "create"),  # group snapshots
        ("snapshot.storage.k8s.io", "volumesnapshots", "delete"),
    ]:
        assert needed in EXPECTED_RBAC["provisioner"], needed
    for kind in SCALABLE:  # migrate scales the source down
        assert ("apps", kind.lower() + "s", "patch") in EXPECTED_RBAC["discovery"], kind
    for watched in WATCHED:
        # What an app is made of (discovery's kinds: namespaced ones, less the Pods their
        # workloads recreate, and the namespaces) is what a restore writes: create, PUT for
        # `existing: update`, delete for in place.
        if watched.kind == "Pod" or not (watched.namespaced or watched.kind == "Namespace"):
            continue
        group = watched.api_version.rpartition("/")[0]
        for verb in ("create", "update", "delete"):
            assert (group, watched.plural, verb) in EXPECTED_RBAC["discovery"], (watched, verb)
    for needed in [
        ("", "pods", "list"),  # hooks find the app's running pods
        ("", "pods/exec", "create"),
        ("snapshot.storage.k8s.io", "volumesnapshots", "delete"),  # app snapshot deletion
        ("", "events", "create"),  # a failed restore's claims marked incomplete
    ]:
        assert needed in EXPECTED_RBAC["discovery"], needed
    assert EXPECTED_NAMESPACED_RBAC["mover"] == {("", "secrets", "get")}
    assert ("", "secrets", "get") in EXPECTED_RBAC["discovery"]  # for protection's buckets


# --- configuration -----------------------------------------------------------------------


def _mounted_files(pod: dict[str, Any], container: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Mounted file path -> (volume kind, source name), for ConfigMap and Secret volumes."""
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    files = {}
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            files[mount["mountPath"]] = ("configMap", volume["configMap"]["name"])
        elif "secret" in volume:
            files[mount["mountPath"]] = ("secret", volume["secret"]["secretName"])
    return files


def test_config_loads_as_the_services_load_it(
    renderings: tuple[Rendering, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for r in renderings:
        if r.monitoring:
            continue
        config_map = r.one("ConfigMap", f"{PREFIX}config")
        path = tmp_path / f"{r.case}.yaml"
        path.write_text(config_map["data"]["vessel.yaml"], encoding="utf-8")
        for name in [n for n in os.environ if n.startswith("VESSEL_")]:
            monkeypatch.delenv(name)
        settings = load_settings(str(path))
        values = r.effective
        mode = values["mode"]
        if mode == "agent" and values["leaf"]["enabled"]:  # its own leaf; JetStream the hub's
            assert settings.nats_url == "nats://backup-vessel-leaf:4222", r.case
            assert settings.nats_jetstream_domain == (values["nats"]["jetstreamDomain"] or "hub")
        else:
            assert settings.nats_url == values["nats"]["url"]
            assert settings.nats_jetstream_domain == (values["nats"]["jetstreamDomain"] or None)
        if mode == "hub":
            assert settings.clusters == [], f"{r.case}: a hub has no cluster of its own"
            assert settings.secrets_cluster == values["protection"]["secretsCluster"]
            continue
        assert [c.id for c in settings.clusters] == [values["clusterId"]], "one cluster"
        (cluster,) = settings.clusters
        assert cluster.agent == ("cluster" if mode == "agent" else "hub"), r.case
        backends = [(b.name, b.type, str(b.path), b.capacity_bytes) for b in cluster.backends]
        assert backends == [
            (b["name"], b["type"], b["path"], b.get("capacityBytes"))
            for b in values["nodeAgents"]["backends"]
        ]
        (bucket,) = settings.buckets
        s3 = values["s3"]
        assert (bucket.name, bucket.endpoint, bucket.bucket, bucket.secure) == (
            s3["name"],
            s3["endpoint"],
            s3["bucket"],
            s3["secure"],
        )
        assert bucket.access_key_env == BucketConfig.model_fields["access_key_env"].default
        lock = s3["objectLock"]
        assert (bucket.object_lock.model_dump() if bucket.object_lock else None) == (
            {"mode": lock["mode"], "retain_days": lock["retainDays"]} if lock["mode"] else None
        )
        assert (
            bucket.key.provider == {"password": "password", "awsKms": "aws-kms"}[s3["keyProvider"]]
        )
        if s3["keyProvider"] == "awsKms":
            assert bucket.key.model_dump(exclude_none=True) == {
                "provider": "aws-kms",
                "key_id": s3["awsKms"]["keyId"],
                **({"region": s3["awsKms"]["region"]} if s3["awsKms"]["region"] else {}),
            }
        protection = values["protection"]
        assert settings.schedule_grace_seconds == protection["scheduleGraceSeconds"]
        assert settings.secrets_cluster == (protection["secretsCluster"] or None)
        home = settings.secrets_cluster or settings.clusters[0].id
        assert home == values["clusterId"], f"{r.case}: bucket Secrets are read elsewhere"
        if r.runs("gateway"):
            port = settings.gateway_listen.rsplit(":", 1)[1]
            gateway = r.one("Deployment", r.name("gateway"))["spec"]["template"]
            (container,) = gateway["spec"]["containers"]
            assert {p["containerPort"] for p in container["ports"]} >= {int(port)}
        for component, _workload, pod in _pods(r):
            (container,) = pod["spec"]["containers"]
            files = _mounted_files(pod, container)
            env = _env(container)
            config = env["VESSEL_CONFIG"]["value"]
            assert files.get(config.rpartition("/")[0]) == ("configMap", f"{PREFIX}config")
            kubeconfig = str(cluster.kubeconfig).rpartition("/")[0]
            mounted = files.get(kubeconfig) == ("configMap", f"{PREFIX}kubeconfig")
            assert mounted is r.uses_kube_api(component), f"{r.case}: {component} kubeconfig"
            secret = s3["existingSecret"]
            for var, key in (
                (bucket.access_key_env, s3["accessKeyKey"]),
                (bucket.secret_key_env, s3["secretKeyKey"]),
            ):
                ref = env.get(var, {}).get("valueFrom", {}).get("secretKeyRef")
                if component in OPENS_BUCKETS and secret:
                    assert ref == {"name": secret, "key": key}, f"{r.case}: {component} {var}"
                else:
                    assert var not in env, f"{r.case}: {component} gets {var}"
            for var, item in env.items():
                source = item.get("valueFrom", {})
                assert (
                    "value" in item
                    or "secretKeyRef" in source
                    or (
                        var == "NODE_NAME"
                        and source == {"fieldRef": {"fieldPath": "spec.nodeName"}}
                    )
                ), var
                assert "KEY" not in var or "valueFrom" in item, f"{var} is a literal"


def test_in_cluster_kubeconfig_uses_the_pod_token(renderings: tuple[Rendering, ...]) -> None:
    for r in renderings:
        config = yaml.safe_load(r.one("ConfigMap", f"{PREFIX}kubeconfig")["data"]["kubeconfig"])
        contexts = {c["name"]: c["context"] for c in config["contexts"]}
        context = contexts[config["current-context"]]
        clusters = {c["name"]: c["cluster"] for c in config["clusters"]}
        users = {u["name"]: u["user"] for u in config["users"]}
        cluster, user = clusters[context["cluster"]], users[context["user"]]
        assert context["cluster"] == r.effective["clusterId"]
        assert cluster["server"] == "https://kubernetes.default.svc"
        assert cluster["certificate-authority"] == f"{SA_DIR}/ca.crt"
        assert user == {"tokenFile": f"{SA_DIR}/token"}, "only the pod's own token"


def test_nats_credentials_are_mounted_only_when_set(renderings: tuple[Rendering, ...]) -> None:
    for r in renderings:
        nats = r.effective["nats"]
        for component, _workload, pod in _pods(r):
            (container,) = pod["spec"]["containers"]
            env = _env(container)
            secret = nats["credentialsSecret"][component]
            files = _mounted_files(pod, container)
            if not secret:
                assert "VESSEL_NATS_CREDENTIALS" not in env, f"{r.case}: {component}"
                assert all(kind != "secret" for kind, _ in files.values()), component
                continue
            path = env["VESSEL_NATS_CREDENTIALS"]["value"]
            directory, _, key = path.rpartition("/")
            assert key == nats["credentialsKey"], f"{r.case}: {component}"
            assert files.get(directory) == ("secret", secret), f"{r.case}: {component}"


def test_the_repository_password_reaches_only_who_seals(renderings: tuple[Rendering, ...]) -> None:
    """Protection seals backup documents and the mover the volume data; the gateway only
    lists backups and gets the bucket's keys without the password."""
    checked = 0
    for r in renderings:
        if not r.effective["s3"]["existingSecret"]:
            continue
        for component, _workload, pod in _pods(r):
            (container,) = pod["spec"]["containers"]
            env = _env(container)
            sealing = component in ("mover", "protection")
            password = sealing and r.effective["s3"]["keyProvider"] == "password"
            assert ("VESSEL_REPOSITORY_PASSWORD" in env) is password, f"{r.case}: {component}"
            kms = r.effective["s3"]["awsKms"]["credentialsSecret"]
            if sealing and r.effective["s3"]["keyProvider"] == "awsKms" and kms:
                assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["name"] == kms
            else:
                assert "AWS_ACCESS_KEY_ID" not in env, f"{r.case}: {component}"
            if component == "gateway":
                assert "VESSEL_S3_ACCESS_KEY" in env, r.case
            checked += 1
    assert checked, "no rendering sets s3.existingSecret"
