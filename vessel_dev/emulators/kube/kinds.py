"""Registry of the resource kinds the emulator serves, and the discovery documents for them."""

from __future__ import annotations

from dataclasses import dataclass

from vessel.kube.objects import KubeObject

VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]
STATUS_VERBS = ["get", "patch", "update"]


@dataclass(frozen=True, slots=True)
class Kind:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    # Kinds with a status subresource keep spec and status writes apart, as the real server does.
    has_status: bool
    short_names: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def qualified(self) -> str:
        """Resource name as the real server spells it in error messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _k(
    group: str,
    version: str,
    plural: str,
    kind: str,
    namespaced: bool,
    has_status: bool,
    *short: str,
) -> Kind:
    return Kind(group, version, plural, kind, namespaced, has_status, short)


SNAPSHOT = "snapshot.storage.k8s.io"
RBAC = "rbac.authorization.k8s.io"

KINDS: tuple[Kind, ...] = (
    _k("", "v1", "namespaces", "Namespace", False, True, "ns"),
    _k("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, True, "pvc"),
    _k("", "v1", "persistentvolumes", "PersistentVolume", False, True, "pv"),
    _k("", "v1", "pods", "Pod", True, True, "po"),
    _k("", "v1", "services", "Service", True, True, "svc"),
    _k("", "v1", "configmaps", "ConfigMap", True, False, "cm"),
    _k("", "v1", "secrets", "Secret", True, False),
    _k("", "v1", "resourcequotas", "ResourceQuota", True, True, "quota"),
    _k("", "v1", "serviceaccounts", "ServiceAccount", True, False, "sa"),
    _k("", "v1", "events", "Event", True, False, "ev"),
    _k("", "v1", "endpoints", "Endpoints", True, False, "ep"),
    _k("apps", "v1", "deployments", "Deployment", True, True, "deploy"),
    _k("apps", "v1", "statefulsets", "StatefulSet", True, True, "sts"),
    _k("apps", "v1", "daemonsets", "DaemonSet", True, True, "ds"),
    _k("apps", "v1", "replicasets", "ReplicaSet", True, True, "rs"),
    _k("batch", "v1", "jobs", "Job", True, True),
    _k("batch", "v1", "cronjobs", "CronJob", True, True, "cj"),
    _k("storage.k8s.io", "v1", "storageclasses", "StorageClass", False, False, "sc"),
    _k(RBAC, "v1", "roles", "Role", True, False),
    _k(RBAC, "v1", "rolebindings", "RoleBinding", True, False),
    _k(RBAC, "v1", "clusterroles", "ClusterRole", False, False),
    _k(RBAC, "v1", "clusterrolebindings", "ClusterRoleBinding", False, False),
    _k("networking.k8s.io", "v1", "ingresses", "Ingress", True, True, "ing"),
    _k(SNAPSHOT, "v1", "volumesnapshots", "VolumeSnapshot", True, True, "vs"),
    _k(SNAPSHOT, "v1", "volumesnapshotcontents", "VolumeSnapshotContent", False, True, "vsc"),
    _k(SNAPSHOT, "v1", "volumesnapshotclasses", "VolumeSnapshotClass", False, False, "vsclass"),
)

_BY_PATH: dict[tuple[str, str, str], Kind] = {(k.group, k.version, k.plural): k for k in KINDS}


def lookup(group: str, version: str, plural: str) -> Kind | None:
    return _BY_PATH.get((group, version, plural))


def core(plural: str) -> Kind:
    """A core/v1 kind by plural; for code inside the emulator that names kinds statically."""
    return _BY_PATH[("", "v1", plural)]


def named(group: str, plural: str) -> Kind:
    return _BY_PATH[(group, "v1", plural)]


def group_versions() -> dict[str, list[str]]:
    """Named API groups (not core) mapped to their served versions, in registry order."""
    groups: dict[str, list[str]] = {}
    for kind in KINDS:
        if kind.group and kind.version not in groups.setdefault(kind.group, []):
            groups[kind.group].append(kind.version)
    return groups


def version_doc() -> KubeObject:
    return {
        "major": "1",
        "minor": "31",
        "gitVersion": "v1.31.0-vessel-emulator",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2024-08-13T00:00:00Z",
        "goVersion": "go1.22.5",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions_doc(server_address: str) -> KubeObject:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group_entry(name: str, versions: list[str]) -> KubeObject:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def api_group_list_doc() -> KubeObject:
    groups = [_group_entry(name, vs) for name, vs in group_versions().items()]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group_doc(group: str) -> KubeObject | None:
    versions = group_versions().get(group)
    if versions is None:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(group, versions)}


def _resource_entries(kind: Kind) -> list[KubeObject]:
    main: KubeObject = {
        "name": kind.plural,
        "singularName": kind.kind.lower(),
        "namespaced": kind.namespaced,
        "kind": kind.kind,
        "verbs": VERBS,
    }
    if kind.short_names:
        main["shortNames"] = list(kind.short_names)
    entries = [main]
    if kind.has_status:
        entries.append(
            {
                "name": f"{kind.plural}/status",
                "singularName": "",
                "namespaced": kind.namespaced,
                "kind": kind.kind,
                "verbs": STATUS_VERBS,
            }
        )
    return entries


def api_resource_list_doc(group: str, version: str) -> KubeObject | None:
    kinds = [k for k in KINDS if k.group == group and k.version == version]
    if not kinds:
        return None
    group_version = f"{group}/{version}" if group else version
    resources = [entry for kind in kinds for entry in _resource_entries(kind)]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }
