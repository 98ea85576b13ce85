"""Payloads of protection beyond the first backup and restore: app snapshots, deletion,
schedules with GFS retention, restore options and the restore preflight query.

Every command carries an `operation_id` (the idempotency key) and `requested_by` (the
identity the gateway authenticated), recorded on the operation and in the activity log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from vessel.contracts.models import AppId, ClusterId, Identifier, K8sName, Payload

ItemState = Literal["Pending", "InProgress", "Completed", "Failed", "Skipped"]


class ItemResult(Payload):
    """The outcome of one item of an operation (a volume, a resource, a hook)."""

    kind: str = Field(min_length=1, description="PersistentVolumeClaim, Deployment, hook...")
    api_version: str = Field("", description="A Kubernetes object's apiVersion (empty: not one)")
    name: str = Field(min_length=1)
    namespace: str = ""
    state: ItemState
    message: str = ""


class CreateAppSnapshot(Payload):
    """Capture an app: its resources into the bucket (`snapshots/<id>/resources.json`) and
    every claim's volume as one group of VolumeSnapshots taken back to back."""

    operation_id: Identifier = Field(description="Also the snapshot's id")
    app_id: AppId
    bucket: Identifier = Field(description="Where the resource archive is kept")
    schedule: Identifier | None = Field(None, description="The schedule that fired it, if any")
    requested_by: str = "anonymous"


class SnapshotVolume(Payload):
    namespace: K8sName
    claim: K8sName
    volume_snapshot: K8sName = Field(description="The VolumeSnapshot object in the app's cluster")
    path: str = Field("", description="Node-local path of the read-only snapshot data")
    bytes: int = Field(0, ge=0)


class AppSnapshotRecord(Payload):
    """One app snapshot, in KV `app_snapshots` under its id (written by protection)."""

    id: Identifier
    app_id: AppId
    cluster: ClusterId
    namespace: K8sName
    bucket: Identifier
    resources_key: str = Field(description="Object key of the resource archive")
    phase: Literal["InProgress", "Completed", "PartiallyFailed", "Failed"]
    volumes: list[SnapshotVolume] = Field(default_factory=list)
    schedule: Identifier | None = None
    created: datetime
    completed: datetime | None = None


class DeleteBackup(Payload):
    """Delete a backup: its catalog entry first (it stops being listed), then its resource
    archive, then the repository snapshots of its volumes (mover forget; prune follows)."""

    operation_id: Identifier
    backup_id: Identifier
    bucket: Identifier
    requested_by: str = "anonymous"


class DeleteAppSnapshot(Payload):
    """Delete an app snapshot: its VolumeSnapshots, its resource archive, its record."""

    operation_id: Identifier
    snapshot_id: Identifier
    requested_by: str = "anonymous"


class Retention(Payload):
    """GFS retention: keep the newest run of each of the last N hours/days/weeks/months/
    years, and never fewer than `floor` of the newest successful runs."""

    hourly: int = Field(0, ge=0, le=10_000)
    daily: int = Field(0, ge=0, le=10_000)
    weekly: int = Field(0, ge=0, le=10_000)
    monthly: int = Field(0, ge=0, le=10_000)
    yearly: int = Field(0, ge=0, le=10_000)
    floor: int = Field(1, ge=0, le=10_000, description="Newest successful runs never deleted")
    floor_verified: int = Field(
        0,
        ge=0,
        le=10_000,
        description="Backups: the newest runs whose restore verification passed, never deleted",
    )


class ScheduleSpec(Payload):
    """A protection schedule of one app. `cron` (5 fields, UTC) or one of the named
    frequencies; `kind` says whether a run takes a snapshot or a backup."""

    id: Identifier
    app_id: AppId
    kind: Literal["snapshot", "backup", "verify"] = Field(
        description="What a run does: snapshot, back up, or verify the newest backup"
    )
    bucket: Identifier
    frequency: Literal["hourly", "daily", "weekly", "monthly", "cron"]
    cron: str = Field("", description="Required for frequency cron; 5-field cron in UTC")
    minute: int = Field(0, ge=0, le=59, description="Minute of the hour for named frequencies")
    hour: int = Field(0, ge=0, le=23)
    day_of_week: int = Field(0, ge=0, le=6, description="0 = Sunday, for weekly")
    day_of_month: int = Field(1, ge=1, le=28, description="For monthly")
    retention: Retention = Field(default_factory=Retention)
    enabled: bool = True
    target_cluster: ClusterId | None = Field(
        None, description="verify: the cluster the scratch copy goes to (default the backup's)"
    )


class PutSchedule(Payload):
    operation_id: Identifier
    schedule: ScheduleSpec
    requested_by: str = "anonymous"


class RemoveSchedule(Payload):
    operation_id: Identifier
    schedule_id: Identifier
    requested_by: str = "anonymous"


class RunMissed(Payload):
    """A schedule's run time passed without a run (the service was down or paused)."""

    schedule_id: Identifier
    app_id: AppId
    due: datetime
    detected: datetime
    reason: str = ""


class ScheduleFired(Payload):
    schedule_id: Identifier
    app_id: AppId
    due: datetime
    operation_id: Identifier


class ResourceFilter(Payload):
    """Select objects by kind, name and labels; an empty field matches everything."""

    kinds: list[str] = Field(default_factory=list, description="Kinds, e.g. ConfigMap")
    names: list[str] = Field(default_factory=list, description="Object names")
    namespaces: list[str] = Field(default_factory=list, description="Source namespaces")
    labels: dict[str, str] = Field(default_factory=dict, description="All must match")


class Transform(Payload):
    """An RFC 6902 JSON patch applied to every restored object the filter selects."""

    match: ResourceFilter = Field(default_factory=ResourceFilter)
    patch: list[dict[str, Any]] = Field(min_length=1)


class RestoreOptions(Payload):
    """How a restore maps and filters the backup's objects."""

    storage_class_mapping: dict[K8sName, K8sName] = Field(default_factory=dict)
    include: list[ResourceFilter] = Field(
        default_factory=list, description="Only objects matching one of these (empty: all)"
    )
    exclude: list[ResourceFilter] = Field(default_factory=list)
    transforms: list[Transform] = Field(default_factory=list)
    existing: Literal["skip", "update", "fail"] = "skip"
    in_place: bool = Field(
        False, description="Replace the app where it runs; requires `confirm`, pauses schedules"
    )
    confirm: bool = False
    trust_unsealed: bool = Field(
        False,
        description="Restore a backup written before sealing (vessel.backup/1), which "
        "cannot be verified; the gateway allows it to admins only",
    )
    verify_data: bool = Field(
        False,
        description="Read every restored file back and compare it with the backup's tree "
        "(size and content hashes); a difference fails the volume",
    )
    cleanup_on_failure: bool = Field(
        True,
        description="A restore that fails or is canceled deletes the objects it created, "
        "claims and their half-filled volumes with them; off (and always in place), they "
        "stay and each claim it created is annotated `vessel.io/restore-incomplete`",
    )


class RestorePreflight(Payload):
    """Request on `vessel.query.protection.restore.preflight`: would this restore be
    accepted? Answered `PreflightResult` (or `QueryFailed`)."""

    backup_id: Identifier
    bucket: Identifier
    target_cluster: ClusterId
    namespace_mapping: dict[K8sName, K8sName] = Field(default_factory=dict)
    options: RestoreOptions = Field(default_factory=RestoreOptions)


class PreflightViolation(Payload):
    field: str = Field(description="Request field at fault, e.g. options.storage_class_mapping")
    reason: Literal["invalid", "conflict", "not_found"]
    message: str


class PreflightResult(Payload):
    ok: bool
    violations: list[PreflightViolation] = Field(default_factory=list)


class CancelOperation(Payload):
    """Cancel a running operation: protection marks it Canceled (a finished one is left
    alone) and announces `protection.operation.canceled`; the mover then stops its
    transfers. Idempotent: cancelling a canceled operation changes nothing."""

    operation_id: Identifier
    requested_by: str = "anonymous"


class OperationCanceled(Payload):
    """An operation was canceled; transfers still running for it stop and fail."""

    operation_id: Identifier
    kind: str
    requested_by: str = "anonymous"
    transfer_ids: list[Identifier] = Field(
        default_factory=list, description="Transfers the operation had started"
    )


class CreateClone(Payload):
    """Copy an app to another namespace or cluster as one operation: from the live app (a
    fresh snapshot, then a backup of it, then a restore), from an app snapshot (its backup,
    then a restore) or from a backup (a restore only — across clusters the fastest)."""

    operation_id: Identifier
    app_id: AppId
    source: Literal["live", "snapshot", "backup"] = "live"
    snapshot_id: Identifier | None = Field(None, description="Required for source snapshot")
    backup_id: Identifier | None = Field(None, description="Required for source backup")
    bucket: Identifier
    target_cluster: ClusterId
    namespace_mapping: dict[K8sName, K8sName] = Field(default_factory=dict)
    options: RestoreOptions = Field(default_factory=RestoreOptions)
    requested_by: str = "anonymous"


class CreateMigration(Payload):
    """Move an app: a backup, a restore into the target, then (optionally) the source's
    workloads scaled to zero — its data and objects stay for a way back."""

    operation_id: Identifier
    app_id: AppId
    bucket: Identifier
    target_cluster: ClusterId
    namespace_mapping: dict[K8sName, K8sName] = Field(default_factory=dict)
    options: RestoreOptions = Field(default_factory=RestoreOptions)
    scale_down_source: bool = True
    requested_by: str = "anonymous"


class CompositeEvent(Payload):
    """A clone or migration changed phase; `step` is the step running or that ended it."""

    operation_id: Identifier
    kind: Literal["clone", "migrate"]
    app_id: AppId
    target_cluster: ClusterId
    step: str = ""
    message: str = ""
