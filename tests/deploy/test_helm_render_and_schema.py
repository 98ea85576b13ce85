"""Checks of the Helm chart charts/vessel as rendered: chart, values, schema and objects.

Lints the chart for the default values and for every `ci/*-values.yaml`, checks that the
values and `values.schema.json` describe each other and the templates, and checks every
rendered object against the Kubernetes OpenAPI schemas (strict: unknown fields fail) of the
oldest Kubernetes the chart supports and of the newest `kubernetes-validate` knows. Then reads
the objects: names, labels, commands, selectors, the Ingress, the StorageClass and the notes.
Rendering and shared helpers: `tests/deploy/chart_support.py`.
"""

from __future__ import annotations

import functools
import json
import re
import tomllib
from typing import Any

import pytest

from tests.deploy.chart_support import (
    CHART,
    CI_VALUES,
    COMMANDS,
    CUSTOM_KINDS,
    MISSING,
    NAMESPACE,
    NODE_AGENTS,
    RELEASE,
    ROOT,
    Rendering,
    _cases,
    _default_values,
    _effective,
    _pods,
    _render_files,
    _selects,
    _yaml,
)
from tests.support import require

try:
    import helm_python
    import kubernetes_validate
except ImportError:  # pragma: no cover - reported through MISSING
    pass


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
    bad: list[dict[str, Any]] = [
        {"gateway": {"replica": 2}},  # a typo: unknown keys fail
        {"logLevel": "TRACE"},
        {"clusterId": "Not_A_Label"},
        {"nats": {"url": "http://nats:4222"}},
        {"gateway": {"resources": {"limits": None}}},  # every container needs limits
        {"gateway": {"ingress": {"enabled": True, "tls": {"enabled": True}}}},  # no secret
        {"nodeAgents": {"backends": []}},
        {"otlpEndpoint": "otel-collector:4317"},  # no scheme
        {"otlpEndpoint": "http://otel-collector"},  # no port: the NetworkPolicy needs one
        {"otlpEndpoint": "grpc://otel-collector:4317"},
        {"otlpEndpoint": "http://otel-collector:4317/v1/traces"},  # a path: OTLP/HTTP
        {"protection": {"scheduleGraceSeconds": 0}},
        {"protection": {"secretsCluster": "Not_A_Label"}},
        {"networkPolicy": {"otlpTo": {"namespaceSelector": {}}}},  # peers are a list
    ]
    with helm_python.Chart.load(CHART) as chart:
        chart.validate_schema(_default_values())
        for values in bad:
            with pytest.raises(helm_python.HelmValuesError):
                chart.validate_schema(values)  # over the defaults, as Helm does
                pytest.fail(f"accepted {values}")


def test_rendering_fails_for_a_secrets_cluster_the_release_does_not_configure() -> None:
    require(MISSING)
    with pytest.raises(helm_python.HelmRenderError, match=r"protection\.secretsCluster"):
        _render_files({"clusterId": "east", "protection": {"secretsCluster": "west"}})
    files = _render_files({"clusterId": "east", "protection": {"secretsCluster": "east"}})
    assert "secrets_cluster: east" in files[f"{CHART.name}/templates/configmap.yaml"]


def test_rendering_fails_for_a_lock_without_days_or_kms_without_a_key() -> None:
    require(MISSING)
    with pytest.raises(helm_python.HelmRenderError, match=r"s3\.objectLock\.retainDays"):
        _render_files({"s3": {"objectLock": {"mode": "compliance", "retainDays": 0}}})
    with pytest.raises(helm_python.HelmRenderError, match=r"s3\.awsKms\.keyId"):
        _render_files({"s3": {"keyProvider": "awsKms"}})
    files = _render_files({"s3": {"objectLock": {"mode": "governance", "retainDays": 7}}})
    config = files[f"{CHART.name}/templates/configmap.yaml"]
    assert "mode: governance" in config and "retain_days: 7" in config


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
            as_agent = component == "discovery" and r.effective["mode"] == "agent"
            if component in NODE_AGENTS or as_agent:
                assert workload["kind"] == ("Deployment" if as_agent else "DaemonSet"), r.case
                assert command[1:] == ["--cluster", r.effective["clusterId"]], command
            else:
                assert workload["kind"] == "Deployment", f"{r.case}: {component}"
                assert len(command) == 1, command
            found[component] = workload
        assert sorted(found) == sorted(r.components), f"{r.case}: workloads {sorted(found)}"


def test_selectors_match_the_pods(renderings: tuple[Rendering, ...]) -> None:
    for r in renderings:
        pods = {c: pod for c, _w, pod in _pods(r, leaf=True)}
        for component, workload, pod in _pods(r, leaf=True):
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


def test_ci_values_exercise_the_optional_parts() -> None:
    """The ci files together turn on what the defaults leave off, so it gets rendered."""
    values = [_effective(json.dumps(v)) for _c, v in _cases()[1:]]
    assert any(v["gateway"]["ingress"]["tls"]["enabled"] for v in values), "TLS Ingress"
    assert any(v["serviceMonitor"]["enabled"] for v in values), "ServiceMonitor"
    assert any(all(v["nats"]["credentialsSecret"].values()) for v in values), "NATS creds"
    assert any(v["s3"]["existingSecret"] for v in values), "S3 Secret"
    assert any(len(v["nodeAgents"]["backends"]) > 1 for v in values), "several backends"
    assert any(v["otlpEndpoint"] and v["networkPolicy"]["otlpTo"] for v in values), "OTLP peers"
    assert any(v["protection"]["secretsCluster"] for v in values), "secrets cluster"
    assert {v["mode"] for v in values} >= {"hub", "agent"}, "a hub and an agent"
    assert any(v["nats"]["jetstreamDomain"] for v in values), "an agent on a leaf node"


# --- ingress, storage class, notes -------------------------------------------------------


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
        wanted = values["create"] and r.effective["mode"] != "hub"  # a hub has no volumes
        assert len(classes) == (1 if wanted else 0), r.case
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
        assert f"put those Secrets in namespace\n{NAMESPACE}," in notes, r.case
        endpoint = r.effective["otlpEndpoint"]
        assert (f"Trace spans go to {endpoint}" in notes) is bool(endpoint), r.case
