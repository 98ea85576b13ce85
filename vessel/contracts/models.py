"""Building blocks shared by event and command payloads."""

from __future__ import annotations

from typing import Annotated

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


def app_id(cluster: str, namespace: str, name: str) -> str:
    """The app id used in KV keys and on the API: `<cluster>.<namespace>.<name>`."""
    return f"{cluster}.{namespace}.{name}"
