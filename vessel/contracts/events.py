"""Payloads of events: facts that happened, published to the events stream."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field, ValidationError

from vessel.contracts.models import (
    ClaimInfo,
    ClusterId,
    HelmRelease,
    Identifier,
    K8sName,
    LabelValue,
    Payload,
    ResourceRef,
    WorkloadStatus,
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
    grouping: Literal["label", "namespace", "helm", "user"] = Field(
        description="helm: a Helm release; label: an app label; namespace: a whole namespace; "
        "user: a user-defined app (namespaces + label selectors)"
    )
    selector: dict[str, str] = Field(default_factory=dict)
    state: AppState
    workloads: list[ResourceRef] = Field(default_factory=list)
    claims: list[ClaimInfo] = Field(default_factory=list)
    resources: list[ResourceRef] = Field(default_factory=list)
    namespaces: list[str] = Field(
        default_factory=list, description="User-defined apps: every namespace they select from"
    )
    helm: HelmRelease | None = Field(None, description="The release, for grouping helm")
    workload_status: list[WorkloadStatus] = Field(
        default_factory=list, description="Readiness and images of each workload"
    )
    dependencies: list[ResourceRef] = Field(
        default_factory=list,
        description="Cluster-scoped resources the app needs: its claims' PVs and StorageClasses",
    )
    reasons: list[str] = Field(
        default_factory=list, description="Why the app is Failed or Removed, one line each"
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="Labels every workload of the app carries"
    )

    @property
    def id(self) -> str:
        return f"{self.cluster}.{self.namespace}.{self.name}"


class AppDiff(Payload):
    """What changed in an app, compactly: resources that joined or left, and each changed
    field or resource as `before -> after`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "added": ["ConfigMap/web-flags"],
                    "removed": [],
                    "changed": {
                        "state": "Available -> Failed",
                        "Deployment/web": "ready 3/3 -> 1/3; images web:1.4 -> web:1.5",
                    },
                }
            ]
        }
    )

    added: list[str] = Field(
        default_factory=list,
        description="New resources: `Kind/name` (`Kind/namespace/name` in another namespace)",
    )
    removed: list[str] = Field(default_factory=list, description="Gone resources, as `added`")
    changed: dict[str, str] = Field(
        default_factory=dict,
        description="`state`, `Kind/name` or another field -> `before -> after`",
    )


class AppChanged(Payload):
    app: AppRecord
    changed: list[str] = Field(default_factory=list, description="Top-level fields that differ")
    diff: AppDiff | None = Field(
        None, description="What changed since the previous record (none for a new or gone app)"
    )


ClusterState = Literal["Connecting", "Available", "Unreachable"]


class ClusterCondition(Payload):
    """A problem with a cluster's connection, credentials or permissions."""

    reason: str = Field(
        description="InvalidKubeconfig, ServerUnreachable, CredentialsRejected, Forbidden, "
        "KindNotServed or ListFailed"
    )
    message: str = Field(description="What failed, naming the file, server or kinds")
    kinds: list[str] = Field(default_factory=list, description="The kinds concerned, if any")


class ClusterRecord(Payload):
    """A cluster as discovery sees it; also the `clusters` KV value. Never holds credentials."""

    id: ClusterId
    server: str = Field("", description="API server URL from the kubeconfig")
    source: Literal["config", "registered", "agent"] = Field(
        description="config: from the settings file; registered: by a register command; "
        "agent: watched by its own agent in the cluster"
    )
    state: ClusterState
    reason: str = Field("", description="One line on why the cluster is not fully Available")
    conditions: list[ClusterCondition] = Field(default_factory=list)
    last_contact: datetime | None = Field(None, description="Last answer from the API server")
    registered: datetime
    agent_version: str = Field("", description="Vessel version of the agent watching it")
    heartbeat: datetime | None = Field(None, description="When its agent last wrote this record")
    heartbeat_seconds: float = Field(
        0.0, ge=0, description="How often its agent writes the record (0: no promise)"
    )

    def away(self, now: datetime) -> bool:
        """Its agent missed `AWAY_AFTER_BEATS` heartbeats: it is stopped, or cut off from
        the bus, and whatever the record says is that old."""
        if self.heartbeat is None or not self.heartbeat_seconds:
            return False
        late = (now - self.heartbeat).total_seconds()
        return late > AWAY_AFTER_BEATS * self.heartbeat_seconds

    def away_reason(self) -> str:
        when = self.heartbeat.isoformat(timespec="seconds") if self.heartbeat else "never"
        return (
            f"its agent has not reported since {when} (every {self.heartbeat_seconds:g} s "
            "expected): it is stopped or cannot reach the bus"
        )


AWAY_AFTER_BEATS = 3
"""Heartbeats an agent may miss before its cluster is Away."""


class ClusterChanged(Payload):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "cluster": {
                        "id": "eu-1",
                        "server": "https://10.0.0.1:6443",
                        "source": "registered",
                        "state": "Unreachable",
                        "reason": "API server https://10.0.0.1:6443 rejected the kubeconfig's "
                        "credentials (HTTP 401 Unauthorized)",
                        "conditions": [
                            {
                                "reason": "CredentialsRejected",
                                "message": "API server https://10.0.0.1:6443 rejected the "
                                "kubeconfig's credentials (HTTP 401 Unauthorized)",
                                "kinds": [],
                            }
                        ],
                        "last_contact": "2025-05-01T10:00:00Z",
                        "registered": "2025-04-01T09:00:00Z",
                    }
                }
            ]
        }
    )

    cluster: ClusterRecord


class BackupEvent(Payload):
    backup_id: Identifier
    operation_id: Identifier
    app_id: str
    bucket: str
    volumes: int = Field(0, ge=0)
    bytes: int = Field(0, ge=0)
    message: str = ""


class AppSnapshotEvent(Payload):
    snapshot_id: Identifier
    operation_id: Identifier
    app_id: str
    volumes: int = Field(0, ge=0)
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
    direction: Literal["backup", "restore", "copy"]
    files: int = Field(0, ge=0)
    bytes: int = Field(0, ge=0)
    snapshot_id: str = Field("", description="Repository snapshot written or read")
    error: str = ""


class SnapshotsForgotten(Payload):
    """The mover's answer to `mover.<cluster>.forget`: the snapshots are gone from the
    bucket's repository and, if asked, the data no other snapshot used was pruned."""

    operation_id: Identifier
    cluster: ClusterId
    bucket: Identifier
    snapshot_ids: list[str] = Field(default_factory=list)
    deleted_packs: int = Field(0, ge=0, description="Pack files the prune deleted")
    deleted_bytes: int = Field(0, ge=0)
    error: str = Field("", description="Why the repository could not be changed; empty: done")


class TransferProgress(Payload):
    transfer_id: Identifier
    operation_id: Identifier
    cluster: ClusterId
    direction: Literal["backup", "restore", "copy"]
    files: int = Field(ge=0)
    bytes: int = Field(ge=0, description="Processed so far: read plus skipped")
    skipped_bytes: int = Field(
        0, ge=0, description="Of `bytes`, those of files unchanged since the parent: not read"
    )
    bytes_per_second: float = Field(ge=0, description="Bytes actually read a second")
    total_bytes: int | None = Field(
        None, description="When known: restores from the start, backups early in the run"
    )
    total_files: int | None = Field(None, ge=0, description="When known, as `total_bytes`")
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


class SnapshotReverted(Payload):
    cluster: ClusterId
    namespace: K8sName
    claim: K8sName = Field(description="The claim whose volume was reverted in place")
    snapshot: K8sName = Field(description="The VolumeSnapshot it was reverted to")
    volume_id: Identifier
    snapshot_id: Identifier = Field(description="The backend's snapshot id")
    backend: str


# Queries: request/reply on `vessel.query.*` (see catalog.QUERY_*), never on a stream.


class AppQuery(Payload):
    cluster: str | None = None
    namespace: str | None = None
    label: str | None = Field(
        None, description="`key=value`, or `key` alone: apps whose workloads carry the label"
    )
    state: AppState | None = None
    page_size: int = Field(100, ge=1, le=500)
    page_token: str = Field("", description="`next_page_token` of the previous page")


class AppPage(Payload):
    apps: list[AppRecord]
    next_page_token: str = Field("", description="Empty on the last page")
    total: int = Field(ge=0, description="Apps matching the filter, over every page")


class AppLookup(Payload):
    id: str = Field(min_length=1, description="`<cluster>.<namespace>.<app>`")


class AppDetail(Payload):
    app: AppRecord


class ClusterQuery(Payload):
    state: ClusterState | None = None


class ClusterList(Payload):
    clusters: list[ClusterRecord]


class JoinTokenRequest(Payload):
    cluster: ClusterId
    ttl_seconds: int = Field(3600, ge=60, le=7 * 24 * 3600, description="How long it may be used")


class JoinToken(Payload):
    """A one-time credential for `cluster`'s leaf connection: it must first be used before
    `expires_at`; from then on it is the cluster's until `cluster remove`. Shown once,
    kept only as a digest."""

    cluster: ClusterId
    token: str
    expires_at: datetime


class QueryFailed(Payload):
    error: str = Field(description="What was wrong with the query")

    @classmethod
    def invalid(cls, subject: str, exc: ValidationError) -> QueryFailed:
        """A request that did not validate: one line naming each wrong field."""
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'request'}: {e['msg']}" for e in exc.errors()
        )
        return cls(error=f"invalid request on {subject}: {problems}")


class PoolCapacityLow(Payload):
    """A pool's free space fell below its `low_capacity_percent` of its total, after a
    volume was provisioned or grown; published again only after it rose above once more."""

    cluster: ClusterId
    backend: Identifier
    pool: Identifier
    free_bytes: int = Field(ge=0)
    total_bytes: int = Field(ge=0)
    threshold_percent: float = Field(ge=0, le=100)


class BackendChanged(Payload):
    """A backend added, updated or removed at runtime (`provisioner.<cluster>.backend.*`)."""

    cluster: ClusterId
    operation_id: Identifier
    backend: Identifier
    type: Literal["btrfs", "dir"] | None = Field(None, description="None when removed")
    path: str | None = Field(None, description="None when removed")
    pools: list[Identifier] = Field(default_factory=list, description="Pool names it serves")


class BackendRejected(Payload):
    """A backend command that was not applied, and why."""

    cluster: ClusterId
    operation_id: Identifier
    action: Literal["add", "update", "remove"]
    backend: str = Field(description="The backend name as given (may be invalid)")
    error: str = Field(description="What was wrong: attribute, name, path or volumes left")
