"""Checks of the Helm chart charts/vessel, rendered offline by Helm's own engine.

`helm-python-sdk` wraps Helm's Go SDK (no `helm` binary, no cluster): it lints the chart and
renders it for the default values and for every `ci/*-values.yaml`, each with and without the
Prometheus Operator API among the cluster's capabilities. `kubernetes-validate` checks every
rendered object against the Kubernetes OpenAPI schemas (strict: unknown fields fail) of the
oldest Kubernetes the chart supports and of the newest it knows. The rest reads the objects:
RBAC, security contexts, resources, mounts, selectors, NetworkPolicies, PodDisruptionBudgets,
and the configuration, which is loaded the way the services load it.
"""

from __future__ import annotations

import functools
import json
import os
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.discovery.inventory import KINDS as DISCOVERY_KINDS
from tests.support import require
from vessel.config import BucketConfig, load_settings

try:
    import helm_python
    import kubernetes_validate
    from helm_python import _native as helm_native
except ImportError as exc:  # pragma: no cover - depends on the environment
    MISSING: str | None = (
        f"{exc.name} is not installed (pip install helm-python-sdk kubernetes-validate)"
    )
else:
    MISSING = None

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "vessel"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
DOCKERFILE = ROOT / "Dockerfile"
RELEASE, NAMESPACE = "backup", "vessel-system"
PREFIX = f"{RELEASE}-vessel-"
"""Object names: the release name, the chart name, the component."""
MONITORING = "monitoring.coreos.com/v1"
CUSTOM_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}
"""Kinds of the operators' APIs: not in the Kubernetes schemas, checked field by field."""

COMPONENTS = ("gateway", "discovery", "protection", "provisioner", "mover")
NODE_AGENTS = frozenset({"provisioner", "mover"})
USES_KUBE_API = frozenset({"discovery", "protection", "provisioner"})
OPENS_BUCKETS = frozenset({"gateway", "protection", "mover"})
COMMANDS = {c: f"vessel-{c}" for c in COMPONENTS}
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
COMPONENT = "app.kubernetes.io/component"

# --- the RBAC each service needs, and nothing more ---------------------------------------

READ = ("get", "list", "watch")
WRITE = ("create", "update", "patch", "delete")
APP_KINDS = {
    "": {
        "namespaces",
        "pods",
        "persistentvolumeclaims",
        "persistentvolumes",
        "services",
        "configmaps",
        "secrets",
        "serviceaccounts",
    },
    "apps": {"deployments", "statefulsets", "daemonsets", "replicasets"},
    "batch": {"jobs", "cronjobs"},
    "rbac.authorization.k8s.io": {"roles", "rolebindings"},
    "networking.k8s.io": {"ingresses"},
    "storage.k8s.io": {"storageclasses"},
}
RESTORED_KINDS = {
    "": {
        "namespaces",
        "configmaps",
        "secrets",
        "serviceaccounts",
        "services",
        "persistentvolumeclaims",
    },
    "apps": {"deployments", "statefulsets", "daemonsets"},
    "batch": {"jobs", "cronjobs"},
    "rbac.authorization.k8s.io": {"roles", "rolebindings"},
    "networking.k8s.io": {"ingresses"},
}
Permission = tuple[str, str, str]
"""(API group, resource, verb)."""


def _grants(kinds: dict[str, set[str]], verbs: tuple[str, ...]) -> set[Permission]:
    return {(g, r, v) for g, resources in kinds.items() for r in resources for v in verbs}


EXPECTED_RBAC: dict[str, set[Permission]] = {
    "provisioner": _grants({"": {"persistentvolumeclaims"}}, READ)
    | _grants({"": {"persistentvolumeclaims/status"}}, ("patch",))
    | _grants({"": {"persistentvolumes"}}, (*READ, "create", "delete", "patch"))
    | _grants({"snapshot.storage.k8s.io": {"volumesnapshots"}}, (*READ, "patch"))
    | _grants(
        {"snapshot.storage.k8s.io": {"volumesnapshots/status", "volumesnapshotcontents/status"}},
        ("patch",),
    )
    | _grants({"snapshot.storage.k8s.io": {"volumesnapshotcontents"}}, (*READ, "create", "delete"))
    | _grants({"snapshot.storage.k8s.io": {"volumesnapshotclasses"}}, READ)
    | _grants({"storage.k8s.io": {"storageclasses"}}, READ)
    | _grants({"": {"events"}}, ("create", "patch")),
    "discovery": _grants(APP_KINDS, READ),
    "protection": _grants(APP_KINDS, READ)
    | _grants(RESTORED_KINDS, WRITE)
    | _grants({"": {"pods/exec"}}, ("create", "get")),
}
"""ClusterRoles only for these three; the gateway and the mover get no permissions."""

# --- rendering ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Rendering:
    case: str
    values: dict[str, Any]
    monitoring: bool
    """Whether the cluster serves monitoring.coreos.com/v1 (Prometheus Operator)."""
    files: dict[str, str]
    """Template path -> rendered text."""
    objects: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str) -> dict[str, Any]:
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.case}: expected one {kind} {name}, found {len(found)}"
        return found[0]

    def name(self, component: str) -> str:
        return f"{PREFIX}{component}"

    @property
    def effective(self) -> dict[str, Any]:
        """The values the templates saw: the case's over the chart's defaults."""
        return _effective(json.dumps(self.values, sort_keys=True))


@functools.cache
def _effective(values_json: str) -> dict[str, Any]:
    require(MISSING)
    with helm_python.Chart.load(CHART) as chart:
        return chart.merge_values(json.loads(values_json))


def _yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


@functools.cache
def _default_values() -> dict[str, Any]:
    values: dict[str, Any] = _yaml(CHART / "values.yaml")
    return values


def _cases() -> list[tuple[str, dict[str, Any]]]:
    return [("default", {})] + [(p.name, _yaml(p) or {}) for p in CI_VALUES]


def _render_files(values: dict[str, Any], *, api_versions: tuple[str, ...] = ()) -> dict[str, str]:
    """Template path -> rendered text, as `helm template --api-versions ...` gives.

    `Chart.render` exposes the release name and namespace; the library's render call also
    takes `api_versions` and `kube_version` (Helm's --api-versions / --kube-version), which
    the Python wrapper does not pass on, so the capabilities go through the call it wraps.
    """
    require(MISSING)
    options = {"name": RELEASE, "namespace": NAMESPACE, "api_versions": list(api_versions)}
    with helm_python.Chart.load(CHART) as chart:
        text = helm_native.call_string(
            "helm_render", chart._raw(), json.dumps(values), json.dumps(options)
        )
    files: dict[str, str] = json.loads(text)
    return files


def _objects(files: dict[str, str]) -> list[dict[str, Any]]:
    objects = []
    for path, text in sorted(files.items()):
        if not path.endswith((".yaml", ".yml")):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                assert isinstance(doc, dict) and "kind" in doc, f"{path}: not an object"
                objects.append(doc)
    return objects


@functools.cache
def _renderings() -> tuple[Rendering, ...]:
    out = []
    for case, values in _cases():
        for monitoring in (False, True):
            files = _render_files(values, api_versions=(MONITORING,) if monitoring else ())
            out.append(Rendering(case, values, monitoring, files, _objects(files)))
    return tuple(out)


@pytest.fixture(scope="module")
def renderings() -> tuple[Rendering, ...]:
    return _renderings()


def _pods(r: Rendering) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(component, workload, pod template) of every Deployment and DaemonSet."""
    for workload in r.of_kind("Deployment") + r.of_kind("DaemonSet"):
        component = workload["metadata"]["labels"][COMPONENT]
        yield component, workload, workload["spec"]["template"]


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod["spec"]
    containers: list[dict[str, Any]] = spec["containers"] + spec.get("initContainers", [])
    return containers


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def _image_uid() -> int:
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE.read_text(encoding="utf-8"), re.M)
    assert users, "the Dockerfile declares no USER"
    return int(users[-1].split(":", 1)[0])


# --- chart, values and schema ------------------------------------------------------------


def _pyproject_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as f:
        version: str = tomllib.load(f)["project"]["version"]
    return version


def test_chart_metadata() -> None:
    chart = _yaml(CHART / "Chart.yaml")
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "vessel"
    assert re.fullmatch(r"\d+\.\d+\.\d+", str(chart["version"])), chart["version"]
    assert str(chart["appVersion"]) == _pyproject_version()
    assert chart.get("description")
    assert chart.get("kubeVersion"), "the chart should state the Kubernetes versions it supports"
    assert not chart.get("dependencies"), "NATS and S3 are external: no chart dependencies"


def test_ci_values_files_exist() -> None:
    names = {p.name for p in CI_VALUES}
    assert len(names) >= 3, f"expected at least three ci/*-values.yaml, found {sorted(names)}"


@pytest.mark.parametrize("case,values", _cases(), ids=[c for c, _ in _cases()])
def test_chart_lints_clean(case: str, values: dict[str, Any]) -> None:
    require(MISSING)
    report = helm_python.lint(CHART, values, strict=True, namespace=NAMESPACE)
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    assert not problems, f"{case}: helm lint: {problems}"


def test_schema_rejects_what_it_does_not_describe() -> None:
    require(MISSING)
    bad = [
        {"gateway": {"replica": 2}},  # a typo: unknown keys fail
        {"logLevel": "TRACE"},
        {"clusterId": "Not_A_Label"},
        {"nats": {"url": "http://nats:4222"}},
        {"gateway": {"resources": {"limits": None}}},  # every container needs limits
        {"gateway": {"ingress": {"enabled": True, "tls": {"enabled": True}}}},  # no secret
        {"nodeAgents": {"backends": []}},
    ]
    with helm_python.Chart.load(CHART) as chart:
        chart.validate_schema(_default_values())
        for values in bad:
            with pytest.raises(helm_python.HelmValuesError):
                chart.validate_schema(values)  # over the defaults, as Helm does
                pytest.fail(f"accepted {values}")


def test_rendering_fails_for_duplicate_backends() -> None:
    require(MISSING)
    backends = [
        {"name": "a", "type": "dir", "path": "/srv/a"},
        {"name": "a", "type": "dir", "path": "/srv/b"},
    ]
    with pytest.raises(helm_python.HelmRenderError, match="used twice"):
        _render_files({"nodeAgents": {"backends": backends}})


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return _resolve(node, root)


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}


def _has_type(value: Any, names: str | list[str]) -> bool:
    for name in [names] if isinstance(names, str) else names:
        if isinstance(value, bool) and name != "boolean":
            continue
        if isinstance(value, _JSON_TYPES[name]):
            return True
    return False


def _coverage_problems(
    value: Any, schema: dict[str, Any], root: dict[str, Any], path: str
) -> list[str]:
    """values.yaml keys that the schema does not describe, and schema keys values.yaml lacks.

    Maps whose keys are the user's (additionalProperties is a schema, or true for objects
    Kubernetes defines, like affinity) and list items are checked one way only: what
    values.yaml holds must be described."""
    schema = _resolve(schema, root)
    problems = []
    if "type" in schema and not _has_type(value, schema["type"]):
        problems.append(f"{path}: {value!r} is not of type {schema['type']}")
    if isinstance(value, dict):
        properties: dict[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, item in value.items():
                problems += _coverage_problems(item, extra, root, f"{path}.{key}")
        elif extra is True:
            pass
        elif value and not properties:
            problems.append(f"{path}: a mapping the schema gives no properties for")
        else:
            for key in sorted(value.keys() - properties.keys()):
                problems.append(f"{path}.{key}: in values.yaml but not in values.schema.json")
            for key in sorted(properties.keys() - value.keys()):
                problems.append(f"{path}.{key}: in values.schema.json but not in values.yaml")
        for key in sorted(value.keys() & properties.keys()):
            problems += _coverage_problems(value[key], properties[key], root, f"{path}.{key}")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        items = _resolve(schema["items"], root)
        for i, item in enumerate(value):
            if isinstance(item, dict) and "properties" in items:
                for key in sorted(item.keys() - items["properties"].keys()):
                    problems.append(f"{path}[{i}].{key}: not in values.schema.json")
                for key in sorted(item.keys() & items["properties"].keys()):
                    sub = items["properties"][key]
                    problems += _coverage_problems(item[key], sub, root, f"{path}[{i}].{key}")
    return problems


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text("utf-8"))
    return schema


def test_values_and_schema_cover_each_other() -> None:
    values = _default_values()
    assert isinstance(values, dict) and values, "values.yaml is empty"
    schema = _schema()
    problems = _coverage_problems(values, schema, schema, "values")
    assert not problems, "\n".join(problems)


def test_schema_describes_every_value() -> None:
    schema = _schema()
    undocumented = []

    def walk(node: dict[str, Any], path: str) -> None:
        for key, sub in node.get("properties", {}).items():
            if not sub.get("description"):
                undocumented.append(f"{path}.{key}")
            walk(_resolve(sub, schema), f"{path}.{key}")
        if isinstance(node.get("items"), dict):
            walk(_resolve(node["items"], schema), f"{path}[]")

    walk(schema, "values")
    assert not undocumented, f"schema properties without a description: {undocumented}"


def test_ci_values_use_only_described_keys() -> None:
    schema = _schema()
    for path in CI_VALUES:
        values = _yaml(path) or {}
        problems = [
            p
            for p in _coverage_problems(values, schema, schema, path.name)
            if "in values.schema.json but not in values.yaml" not in p
        ]
        assert not problems, "\n".join(problems)


def test_templates_use_only_declared_values() -> None:
    values = _default_values()
    templates = sorted((CHART / "templates").iterdir())
    assert templates, "the chart has no templates"
    used = 0
    for template in templates:
        text = template.read_text(encoding="utf-8")
        for match in re.finditer(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", text):
            node: Any = values
            for key in match.group(1).lstrip(".").split("."):
                assert isinstance(node, dict) and key in node, (
                    f"{template.name}: .Values{match.group(1)} is not in values.yaml"
                )
                node = node[key]
            used += 1
    assert used, "no template reads .Values"


# --- the rendered objects ----------------------------------------------------------------


def _kube_versions() -> tuple[str, ...]:
    require(MISSING)
    floor = re.search(r"(\d+\.\d+)", str(_yaml(CHART / "Chart.yaml")["kubeVersion"]))
    assert floor, "kubeVersion names no version"
    return floor.group(1), kubernetes_validate.latest_version()


def test_every_object_is_valid_kubernetes(
    renderings: tuple[Rendering, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    # kubernetes-validate reads its schema files (megabytes of JSON) for every object it
    # checks: read each once.
    utils = kubernetes_validate.utils
    monkeypatch.setattr(utils, "schema_contents", functools.cache(utils.schema_contents))
    seen: set[str] = set()
    checked = 0
    versions = _kube_versions()
    for r in renderings:
        assert r.objects, f"{r.case}: nothing rendered"
        for obj in r.objects:
            key = json.dumps(obj, sort_keys=True)
            if key in seen or (obj["apiVersion"], obj["kind"]) in CUSTOM_KINDS:
                continue
            seen.add(key)
            where = f"{r.case}: {obj['kind']} {obj.get('metadata', {}).get('name')}"
            for version in versions:
                try:
                    kubernetes_validate.validate(obj, version, strict=True)
                except kubernetes_validate.ValidationError as exc:
                    path = "/".join(map(str, exc.path))
                    pytest.fail(f"{where} (Kubernetes {version}) at {path}: {exc.message}")
                except kubernetes_validate.SchemaNotFoundError as exc:
                    pytest.fail(f"{where}: {exc.message}")
            checked += 1
    assert checked >= 20


def test_objects_are_named_and_labelled(renderings: tuple[Rendering, ...]) -> None:
    for r in renderings:
        names = [(o["kind"], o["metadata"]["name"]) for o in r.objects]
        assert len(names) == len(set(names)), f"{r.case}: duplicate objects"
        for obj in r.objects:
            meta = obj["metadata"]
            assert len(meta["name"]) <= 63, f"{r.case}: {meta['name']} is too long"
            assert "namespace" not in meta, f"{r.case}: {meta['name']}: Helm sets the namespace"
            labels = meta.get("labels") or {}
            assert labels.get("app.kubernetes.io/instance") == RELEASE, meta["name"]
            assert labels.get("app.kubernetes.io/managed-by") == "Helm", meta["name"]


def test_every_service_runs_once_as_its_console_script(renderings: tuple[Rendering, ...]) -> None:
    with (ROOT / "pyproject.toml").open("rb") as f:
        scripts = set(tomllib.load(f)["project"]["scripts"])
    for r in renderings:
        found = {}
        for component, workload, pod in _pods(r):
            (container,) = pod["spec"]["containers"]
            command = container["command"]
            assert command[0] in scripts, f"{r.case}: {command[0]} is not a console script"
            assert command[0] == COMMANDS[component], f"{r.case}: {component} runs {command}"
            if component in NODE_AGENTS:
                assert workload["kind"] == "DaemonSet", f"{r.case}: {component}"
                assert command[1:] == ["--cluster", r.effective["clusterId"]], command
            else:
                assert workload["kind"] == "Deployment", f"{r.case}: {component}"
                assert len(command) == 1, command
            found[component] = workload
        assert sorted(found) == sorted(COMPONENTS), f"{r.case}: workloads {sorted(found)}"


def test_selectors_match_the_pods(renderings: tuple[Rendering, ...]) -> None:
    for r in renderings:
        pods = {c: pod for c, _w, pod in _pods(r)}
        for component, workload, pod in _pods(r):
            selector = workload["spec"]["selector"]["matchLabels"]
            assert _selects(selector, pod["metadata"]["labels"]), f"{r.case}: {component}"
            others = [c for c, p in pods.items() if c != component]
            for other in others:
                assert not _selects(selector, pods[other]["metadata"]["labels"]), (
                    f"{r.case}: {component}'s selector also matches {other}"
                )
        for service in r.of_kind("Service"):
            selected = [
                c
                for c, p in pods.items()
                if _selects(service["spec"]["selector"], p["metadata"]["labels"])
            ]
            assert selected, f"{r.case}: Service {service['metadata']['name']} selects no pod"
            for port in service["spec"]["ports"]:
                for component in selected:
                    (container,) = pods[component]["spec"]["containers"]
                    named = {p["name"] for p in container.get("ports", [])}
                    assert port["targetPort"] in named, (
                        f"{r.case}: {component} has no port {port['targetPort']}"
                    )


def test_discovery_runs_one_replica_and_is_replaced_not_rolled(
    renderings: tuple[Rendering, ...],
) -> None:
    for r in renderings:
        discovery = r.one("Deployment", r.name("discovery"))
        assert discovery["spec"]["replicas"] == 1, r.case
        assert discovery["spec"]["strategy"]["type"] == "Recreate", r.case


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
        assert len(accounts) == len(COMPONENTS), f"{r.case}: one ServiceAccount per service"
        for sa in accounts.values():
            assert sa.get("automountServiceAccountToken") is False, sa["metadata"]["name"]
        for component, _workload, pod in _pods(r):
            spec = pod["spec"]
            assert spec["serviceAccountName"] == r.name(component), f"{r.case}: {component}"
            wants = component in USES_KUBE_API
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


def test_rbac_is_least_privilege(renderings: tuple[Rendering, ...]) -> None:
    for r in renderings:
        roles = {
            (o["kind"], o["metadata"]["name"]): o
            for o in r.of_kind("ClusterRole") + r.of_kind("Role")
        }
        granted: dict[str, set[Permission]] = {}
        for binding in r.of_kind("ClusterRoleBinding") + r.of_kind("RoleBinding"):
            ref = binding["roleRef"]
            role = roles.get((ref["kind"], ref["name"]))
            assert role, f"{r.case}: {binding['metadata']['name']} binds an unknown role"
            for subject in binding["subjects"]:
                assert subject["kind"] == "ServiceAccount", subject
                assert subject["namespace"] == NAMESPACE, subject
                component = subject["name"].removeprefix(PREFIX)
                granted.setdefault(component, set()).update(_permissions(role["rules"]))
        assert granted == EXPECTED_RBAC, (
            f"{r.case}: RBAC differs from the least each service needs:\n"
            + "\n".join(
                f"{c}: extra {sorted(granted.get(c, set()) - EXPECTED_RBAC.get(c, set()))}, "
                f"missing {sorted(EXPECTED_RBAC.get(c, set()) - granted.get(c, set()))}"
                for c in COMPONENTS
                if granted.get(c, set()) != EXPECTED_RBAC.get(c, set())
            )
        )
        bound = {
            b["roleRef"]["name"] for b in r.of_kind("ClusterRoleBinding") + r.of_kind("RoleBinding")
        }
        unused = {name for (_kind, name) in roles} - bound
        assert not unused, f"{r.case}: roles bound to no one: {unused}"


def test_rbac_covers_what_the_services_call() -> None:
    """The expected RBAC above against the code: the kinds discovery watches, the provisioner's."""
    for api_version, kind in DISCOVERY_KINDS:
        group = api_version.rpartition("/")[0]
        resource = kind.lower() + "s"
        for verb in ("list", "watch"):
            assert (group, resource, verb) in EXPECTED_RBAC["discovery"], (api_version, kind)
            assert (group, resource, verb) in EXPECTED_RBAC["protection"], (api_version, kind)
    for needed in [
        ("", "persistentvolumeclaims", "watch"),
        ("storage.k8s.io", "storageclasses", "list"),
        ("", "persistentvolumes", "create"),
        ("", "events", "create"),
    ]:
        assert needed in EXPECTED_RBAC["provisioner"], needed


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
        assert settings.nats_url == values["nats"]["url"]
        assert [c.id for c in settings.clusters] == [values["clusterId"]], "one cluster"
        (cluster,) = settings.clusters
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
            assert mounted is (component in USES_KUBE_API), f"{r.case}: {component} kubeconfig"
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


def test_ci_values_exercise_the_optional_parts() -> None:
    """The ci files together turn on what the defaults leave off, so it gets rendered."""
    values = [_effective(json.dumps(v)) for _c, v in _cases()[1:]]
    assert any(v["gateway"]["ingress"]["tls"]["enabled"] for v in values), "TLS Ingress"
    assert any(v["serviceMonitor"]["enabled"] for v in values), "ServiceMonitor"
    assert any(all(v["nats"]["credentialsSecret"].values()) for v in values), "NATS creds"
    assert any(v["s3"]["existingSecret"] for v in values), "S3 Secret"
    assert any(len(v["nodeAgents"]["backends"]) > 1 for v in values), "several backends"


# --- network, disruptions, monitoring ----------------------------------------------------


def _port(url_or_endpoint: str, default: int) -> int:
    match = re.search(r":(\d+)$", url_or_endpoint.split(",")[0].split("://")[-1].split("/")[0])
    return int(match.group(1)) if match else default


def _rule_ports(rules: list[dict[str, Any]]) -> set[tuple[str, int]]:
    return {(p.get("protocol", "TCP"), p["port"]) for rule in rules for p in rule.get("ports", [])}


def test_network_policies_isolate_every_pod(renderings: tuple[Rendering, ...]) -> None:
    for r in renderings:
        values = r.effective
        policies = r.of_kind("NetworkPolicy")
        if not values["networkPolicy"]["enabled"]:
            assert not policies, r.case
            continue
        monitored = bool(r.of_kind("ServiceMonitor"))
        nats = ("TCP", _port(values["nats"]["url"], 4222))
        s3 = ("TCP", _port(values["s3"]["endpoint"], 443 if values["s3"]["secure"] else 80))
        api = {("TCP", p) for p in values["networkPolicy"]["apiServerPorts"]}
        dns = {("UDP", 53), ("TCP", 53)}
        for component, _workload, pod in _pods(r):
            where = f"{r.case}: {component}"
            labels = pod["metadata"]["labels"]
            mine = [
                p for p in policies if _selects(p["spec"]["podSelector"]["matchLabels"], labels)
            ]
            assert len(mine) == 1, f"{where}: {len(mine)} NetworkPolicies select it"
            spec = mine[0]["spec"]
            assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"], where
            ingress = _rule_ports(spec.get("ingress", []))
            expected_in = {("TCP", 50051)} if component == "gateway" else set()
            if monitored:
                expected_in.add(("TCP", values["serviceMonitor"]["port"]))
            assert ingress == expected_in, f"{where}: ingress {ingress}"
            assert all(rule.get("ports") for rule in spec.get("ingress", [])), where
            egress = _rule_ports(spec["egress"])
            expected_out = dns | {nats}
            if component in OPENS_BUCKETS:
                expected_out.add(s3)
            if component in USES_KUBE_API:
                expected_out |= api
            assert egress == expected_out | _rule_ports(values["networkPolicy"]["extraEgress"]), (
                f"{where}: egress {sorted(egress)}, expected {sorted(expected_out)}"
            )


def test_every_deployment_has_a_disruption_budget_that_never_blocks_drains(
    renderings: tuple[Rendering, ...],
) -> None:
    for r in renderings:
        budgets = r.of_kind("PodDisruptionBudget")
        for deployment in r.of_kind("Deployment"):
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            mine = [b for b in budgets if _selects(b["spec"]["selector"]["matchLabels"], labels)]
            name = deployment["metadata"]["name"]
            assert len(mine) == 1, f"{r.case}: {name} has {len(mine)} PodDisruptionBudgets"
            spec = mine[0]["spec"]
            if "maxUnavailable" in spec:
                assert int(spec["maxUnavailable"]) >= 1, f"{r.case}: {name} can never move"
            else:
                assert int(spec["minAvailable"]) < deployment["spec"]["replicas"], name
        assert len(budgets) == len(r.of_kind("Deployment")), f"{r.case}: stray budgets"


def test_service_monitor_only_when_enabled_and_the_cluster_serves_it(
    renderings: tuple[Rendering, ...],
) -> None:
    assert _default_values()["serviceMonitor"]["enabled"] is False, "on by default"
    rendered_with_monitor = 0
    for r in renderings:
        values = r.effective["serviceMonitor"]
        monitors = r.of_kind("ServiceMonitor")
        wanted = values["enabled"] and r.monitoring
        assert len(monitors) == (1 if wanted else 0), f"{r.case} (capability: {r.monitoring})"
        metrics_ports = [
            p
            for _c, _w, pod in _pods(r)
            for c in pod["spec"]["containers"]
            for p in c.get("ports", [])
            if p["name"] == "metrics"
        ]
        assert bool(metrics_ports) is wanted, f"{r.case}: metrics ports without a monitor"
        if not wanted:
            continue
        rendered_with_monitor += 1
        (monitor,) = monitors
        assert monitor["apiVersion"] == MONITORING
        labels = monitor["metadata"]["labels"]
        assert all(labels.get(k) == v for k, v in values["labels"].items())
        services = [
            s
            for s in r.of_kind("Service")
            if _selects(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
        ]
        assert len(services) == 1, f"{r.case}: the ServiceMonitor selects {len(services)}"
        ports = {p["name"]: p for p in services[0]["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["port"] in ports, endpoint
            assert endpoint["path"] == values["path"]
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert rendered_with_monitor, "no ci values file renders the ServiceMonitor"


def test_gateway_ingress_serves_tls_when_asked(renderings: tuple[Rendering, ...]) -> None:
    for r in renderings:
        ingress_values = r.effective["gateway"]["ingress"]
        ingresses = r.of_kind("Ingress")
        assert len(ingresses) == (1 if ingress_values["enabled"] else 0), r.case
        if not ingresses:
            continue
        (ingress,) = ingresses
        (rule,) = ingress["spec"]["rules"]
        assert rule["host"] == ingress_values["host"]
        backend = rule["http"]["paths"][0]["backend"]["service"]
        assert backend == {"name": r.name("gateway"), "port": {"name": "grpc"}}
        tls = ingress["spec"].get("tls", [])
        if ingress_values["tls"]["enabled"]:
            assert tls == [
                {
                    "hosts": [ingress_values["host"]],
                    "secretName": ingress_values["tls"]["secretName"],
                }
            ]
        else:
            assert not tls


def test_storage_class_names_the_vessel_provisioner(renderings: tuple[Rendering, ...]) -> None:
    from vessel.config import PROVISIONER_NAME

    for r in renderings:
        values = r.effective["storageClass"]
        classes = r.of_kind("StorageClass")
        assert len(classes) == (1 if values["create"] else 0), r.case
        for storage_class in classes:
            assert storage_class["provisioner"] == PROVISIONER_NAME
            assert storage_class["metadata"]["name"] == values["name"]
            default = (
                storage_class["metadata"]
                .get("annotations", {})
                .get("storageclass.kubernetes.io/is-default-class")
            )
            assert (default == "true") is values["isDefault"], r.case


def test_notes_give_first_steps_and_warn_about_missing_keys(
    renderings: tuple[Rendering, ...],
) -> None:
    for r in renderings:
        notes = r.files[f"{CHART.name}/templates/NOTES.txt"]
        assert "First steps" in notes, r.case
        assert "vessel --endpoint" in notes and "app list" in notes, r.case
        missing_secret = not r.effective["s3"]["existingSecret"]
        assert ("s3.existingSecret is not set" in notes) is missing_secret, r.case
