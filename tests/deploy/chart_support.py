"""Shared support for the Helm chart checks in this directory.

Renders charts/vessel offline with Helm's own engine (`helm-python-sdk` wraps Helm's Go SDK:
no `helm` binary, no cluster) for the default values and for every `ci/*-values.yaml`, each
with and without the Prometheus Operator API among the cluster's capabilities. Also holds the
constants the checks share: object names, components, and the RBAC each service needs.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support import require

try:
    import helm_python
    import kubernetes_validate  # noqa: F401 - its absence is reported through MISSING
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
CUSTOM_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}
"""Kinds of the operators' APIs: not in the Kubernetes schemas, checked field by field."""

COMPONENTS = ("gateway", "discovery", "protection", "provisioner", "mover")
MODE_COMPONENTS = {
    "all-in-one": COMPONENTS,
    "hub": ("gateway", "discovery", "protection"),
    "agent": ("discovery", "provisioner", "mover"),
}
"""What a release runs in each `mode`."""
NODE_AGENTS = frozenset({"provisioner", "mover"})
USES_KUBE_API = frozenset({"discovery", "provisioner", "mover"})
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
    # patch of claims: revert in place clears its request annotation on the claim
    "provisioner": _grants({"": {"persistentvolumeclaims"}}, (*READ, "patch"))
    | _grants({"": {"persistentvolumeclaims/status"}}, ("patch",))
    | _grants({"": {"persistentvolumes"}}, (*READ, "create", "delete", "patch"))
    # create and delete: the VolumeSnapshots of an app snapshot's group
    | _grants(
        {"snapshot.storage.k8s.io": {"volumesnapshots"}}, (*READ, "patch", "create", "delete")
    )
    | _grants(
        {"snapshot.storage.k8s.io": {"volumesnapshots/status", "volumesnapshotcontents/status"}},
        ("patch",),
    )
    | _grants({"snapshot.storage.k8s.io": {"volumesnapshotcontents"}}, (*READ, "create", "delete"))
    | _grants({"snapshot.storage.k8s.io": {"volumesnapshotclasses"}}, READ)
    | _grants({"storage.k8s.io": {"storageclasses"}}, READ)
    | _grants({"": {"events"}}, ("create", "patch")),
    # Discovery is the cluster agent, making protection's calls: WRITE on restored kinds:
    # create, `existing: update` (PUT), in-place restore (delete) and migrate's scale-down
    # (patch); hooks exec in the pods READ finds; deleting an app snapshot deletes its
    # VolumeSnapshots (the provisioner creates them); a failed restore kept in the cluster
    # gets an Event on each claim it marks incomplete; a verification's scratch namespaces
    # get a ResourceQuota.
    "discovery": _grants(APP_KINDS, READ)
    | _grants(RESTORED_KINDS, WRITE)
    | _grants({"": {"pods/exec"}}, ("create", "get"))
    | _grants({"snapshot.storage.k8s.io": {"volumesnapshots"}}, ("delete",))
    | _grants({"": {"resourcequotas"}}, ("create",))
    | _grants({"": {"events"}}, ("create",)),
}
"""Cluster-wide grants (ClusterRoleBindings): only these two services; the others none."""

EXPECTED_NAMESPACED_RBAC: dict[str, set[Permission]] = {
    "mover": {("", "secrets", "get")},
}
"""Grants in the release namespace only (RoleBindings): the mover reads the credential
Secrets of buckets there (protection reads them through the cluster agent)."""

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
    def components(self) -> tuple[str, ...]:
        return MODE_COMPONENTS[self.effective["mode"]]

    def runs(self, component: str) -> bool:
        return component in self.components

    def uses_kube_api(self, component: str) -> bool:
        """A hub has no cluster of its own: none of its services calls an API server."""
        return component in USES_KUBE_API and self.effective["mode"] != "hub"

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


def _pods(
    r: Rendering, *, leaf: bool = False
) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(component, workload, pod template) of every Deployment and DaemonSet of a Vessel
    service, and with `leaf` of the cluster's own NATS leaf an agent release may run."""
    for workload in r.of_kind("Deployment") + r.of_kind("DaemonSet"):
        component = workload["metadata"]["labels"][COMPONENT]
        if leaf or component != "leaf":
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
