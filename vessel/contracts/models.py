"""Building blocks shared by event and command payloads."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

ClusterId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
"""A cluster id is one NATS subject token and a DNS label."""

K8sName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"),
]
"""A Kubernetes object name (RFC 1123 subdomain)."""

LabelValue = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=63, pattern=r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
    ),
]
"""A non-empty Kubernetes label value (app names come from labels)."""

APP_ID_PATTERN = r"^[a-z0-9-]+\.[a-z0-9-]+\.[A-Za-z0-9][-A-Za-z0-9_.]{0,62}$"
AppId = Annotated[str, StringConstraints(pattern=APP_ID_PATTERN)]
"""`<cluster>.<namespace>.<app>`: unambiguous, as neither cluster ids nor namespaces hold dots."""

SnapshotId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
"""A snapshot in a backup repository (the hash of its sealed document)."""

Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
]
"""Ids Vessel makes (operations, backups, transfers): safe in KV keys and object names."""


def _plain_key(value: str) -> str:
    if any(part in ("", ".", "..") for part in value.split("/")):
        raise ValueError("must be a relative object key without empty, '.' or '..' segments")
    return value


ObjectKey = Annotated[
    str,
    StringConstraints(min_length=1, max_length=1024, pattern=r"^[A-Za-z0-9._/-]+$"),
    AfterValidator(_plain_key),
]
"""An object key in a bucket: relative, `/`-separated, never climbing out of its prefix."""


class Payload(BaseModel):
    """Base for every payload: unknown fields are rejected so typos surface at the boundary."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ResourceRef(Payload):
    api_version: str = Field(min_length=1)
    kind: str = Field(min_length=1)
    name: K8sName
    namespace: str | None = None


class ClaimInfo(Payload):
    name: K8sName
    storage_class: str | None = None
    requested_bytes: int = Field(ge=0)
    volume_name: str | None = None
    phase: str = "Pending"
    backend_volume: str | None = Field(
        None, description="The backend volume id, when Vessel provisioned the bound PV"
    )


class HelmRelease(Payload):
    """The latest revision of a Helm release, from its `sh.helm.release.v1.*` Secret."""

    name: str = Field(min_length=1, description="Release name")
    namespace: str = Field(min_length=1, description="Namespace of the release record")
    revision: int = Field(ge=0, description="Release version (`helm history` REVISION)")
    chart: str = Field("", description="Chart name")
    chart_version: str = Field("", description="Chart version")
    app_version: str = Field("", description="The chart's appVersion")
    status: str = Field(
        "unknown", description="deployed, failed, pending-upgrade...; unknown if undecodable"
    )


class WorkloadStatus(Payload):
    """Readiness of one workload of an app."""

    kind: str = Field(min_length=1)
    name: K8sName
    desired: int = Field(0, ge=0, description="Replicas (DaemonSets: pods scheduled) wanted")
    ready: int = Field(0, ge=0, description="Replicas ready")
    images: list[str] = Field(default_factory=list, description="Container images, in order")


DnsLabel = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
"""A namespace or app name that is also a valid label value (at most 63 characters)."""


class LabelRequirement(Payload):
    """One `matchExpressions` entry of a Kubernetes label selector."""

    key: str = Field(min_length=1)
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] = Field(default_factory=list)


class NamespaceSelection(Payload):
    """Objects of one namespace, all of them or those a label selector matches (like
    `includedNamespaces` of a Trident Protect Application)."""

    namespace: DnsLabel
    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: list[LabelRequirement] = Field(default_factory=list)


def app_id(cluster: str, namespace: str, name: str) -> str:
    """The app id used in KV keys and on the API: `<cluster>.<namespace>.<name>`."""
    return f"{cluster}.{namespace}.{name}"
