"""Payloads of events: facts that happened, published to the events stream."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from vessel.contracts.models import (
    ClaimInfo,
    ClusterId,
    Identifier,
    K8sName,
    LabelValue,
    Payload,
    ResourceRef,
)

AppState = Literal["Available", "Failed", "Removed"]


class VolumeProvisioned(Payload):
    cluster: ClusterId
    namespace: K8sName
    claim: K8sName
    pv_name: K8sName
    volume_id: Identifier
    backend: str
    backend_type: str
    size_bytes: int = Field(ge=0)
    path: str = Field(description="Node-local path of the volume's files")


class VolumeFailed(Payload):
    cluster: ClusterId
    namespace: K8sName
    claim: K8sName
    reason: str = Field(description="CamelCase reason, as on the Kubernetes Event")
    message: str


class AppRecord(Payload):
    """An application as discovery sees it; also the inventory KV value."""

    cluster: ClusterId
    namespace: K8sName
    name: LabelValue
    grouping: Literal["label", "namespace"]
    selector: dict[str, str] = Field(default_factory=dict)
    state: AppState
    workloads: list[ResourceRef] = Field(default_factory=list)
    claims: list[ClaimInfo] = Field(default_factory=list)
    resources: list[ResourceRef] = Field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.cluster}.{self.namespace}.{self.name}"


class AppChanged(Payload):
    app: AppRecord
    changed: list[str] = Field(default_factory=list, description="Top-level fields that differ")


class BackupEvent(Payload):
    backup_id: Identifier
    operation_id: Identifier
    app_id: str
    bucket: str
    volumes: int = Field(0, ge=0)
    bytes: int = Field(0, ge=0)
    message: str = ""


class RestoreEvent(Payload):
    operation_id: Identifier
    backup_id: Identifier
    target_cluster: ClusterId
    namespace_mapping: dict[str, str] = Field(default_factory=dict)
    message: str = ""


class TransferResult(Payload):
    transfer_id: Identifier
    operation_id: Identifier
    cluster: ClusterId
    direction: Literal["backup", "restore"]
    files: int = Field(0, ge=0)
    bytes: int = Field(0, ge=0)
    snapshot_id: str = Field("", description="Repository snapshot written or read")
    error: str = ""


class TransferProgress(Payload):
    transfer_id: Identifier
    operation_id: Identifier
    cluster: ClusterId
    direction: Literal["backup", "restore"]
    files: int = Field(ge=0)
    bytes: int = Field(ge=0)
    bytes_per_second: float = Field(ge=0)
    total_bytes: int | None = Field(None, description="When known (restores)")
    eta_seconds: float | None = None


class DeadLettered(Payload):
    stream: str
    subject: str
    sequence: int
    message_id: str | None = None
    type: str | None = None
    error: str
    data: str = Field(description="The raw message body, truncated to 64 KiB")


VolumeSizeReason = Literal["request", "autogrow"]


class VolumeDeleted(Payload):
    """The backend volume and its PV are gone (reclaim policy Delete)."""

    cluster: ClusterId
    namespace: K8sName
    claim: K8sName
    volume_id: Identifier
    backend: str
    reason: Literal["released", "orphaned"] = Field(
        description="released: its PV was released; orphaned: its claim vanished before a PV"
    )


class VolumeRetained(Payload):
    """The claim is gone; reclaim policy Retain keeps the backend volume (and its PV)."""

    cluster: ClusterId
    namespace: K8sName
    claim: K8sName
    volume_id: Identifier
    backend: str
    path: str = Field(description="Node-local path of the kept volume")


class VolumeExpanded(Payload):
    cluster: ClusterId
    namespace: K8sName
    claim: K8sName
    volume_id: Identifier
    backend: str
    old_size_bytes: int = Field(ge=0)
    new_size_bytes: int = Field(ge=0)
    reason: VolumeSizeReason = Field(
        description="request: the claim asked for more; autogrow: the class's auto-grow policy"
    )


class VolumeImported(Payload):
    cluster: ClusterId
    namespace: K8sName
    claim: K8sName
    volume_id: Identifier
    backend: str
    source: str = Field(description="The adopted directory or subvolume, relative to the backend")
    size_bytes: int = Field(ge=0)


class SnapshotChanged(Payload):
    cluster: ClusterId
    namespace: K8sName
    snapshot: K8sName = Field(description="The VolumeSnapshot")
    content: K8sName = Field(description="The VolumeSnapshotContent")
    snapshot_id: Identifier = Field(description="The backend's snapshot id")
    volume_id: Identifier
    backend: str
    size_bytes: int = Field(0, ge=0)


class CloneCreated(Payload):
    cluster: ClusterId
    namespace: K8sName
    claim: K8sName
    volume_id: Identifier
    backend: str
    source_kind: Literal["PersistentVolumeClaim", "VolumeSnapshot"]
    source_name: K8sName
    size_bytes: int = Field(ge=0)
