"""Payloads of commands: requests for work, handled at-least-once by idempotent handlers.

Every command carries an `operation_id`, the idempotency key: a redelivered or repeated
command with the same id must not start the work twice.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from vessel.contracts.models import (
    AppId,
    ClusterId,
    DnsLabel,
    Identifier,
    K8sName,
    NamespaceSelection,
    Payload,
    SnapshotId,
)
from vessel.contracts.protection import RestoreOptions


class CreateBackup(Payload):
    operation_id: Identifier
    app_id: AppId
    bucket: Identifier
    snapshot_id: Identifier | None = Field(
        None, description="Copy this existing app snapshot; none: take a fresh one first"
    )
    schedule: Identifier | None = Field(None, description="The schedule that fired it, if any")
    requested_by: str = "anonymous"


class CreateRestore(Payload):
    operation_id: Identifier
    backup_id: Identifier
    bucket: Identifier
    target_cluster: ClusterId
    namespace_mapping: dict[K8sName, K8sName] = Field(default_factory=dict)
    options: RestoreOptions = Field(default_factory=RestoreOptions)
    requested_by: str = "anonymous"


class MoveToBucket(Payload):
    """Back up the files of a volume into the bucket's repository as one snapshot."""

    transfer_id: Identifier
    operation_id: Identifier
    cluster: ClusterId
    bucket: Identifier
    source_path: str = Field(min_length=1)
    parent_snapshot: SnapshotId | None = Field(
        None, description="An earlier snapshot of the same volume: unchanged files are not read"
    )
    parent_source_path: str | None = Field(
        None,
        description="The read-only btrfs snapshot the parent snapshot was taken from; with "
        "`source_path` a later read-only snapshot of the same volume, only what changed "
        "between the two is visited",
    )
    tags: dict[str, str] = Field(default_factory=dict)


class MoveFromBucket(Payload):
    """Write the files of repository snapshot `snapshot_id` into the volume at `target_path`."""

    transfer_id: Identifier
    operation_id: Identifier
    cluster: ClusterId
    bucket: Identifier
    snapshot_id: SnapshotId
    target_path: str = Field(min_length=1)
    paths: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Only these entries of the snapshot (and the directories leading there)",
    )
    target_dir: str = Field(
        "", max_length=4096, description="With `paths`: where in the volume they go"
    )
    verify: bool = Field(
        False, description="Then read the volume back and compare it with the snapshot's tree"
    )


class RegisterCluster(Payload):
    """Register (or, as `update`, re-point) a cluster. Give exactly one of `kubeconfig_path`
    and `kubeconfig`; inline text is kept only in a 0600 file under discovery's state
    directory, never in KV, events or logs. A bad kubeconfig is reported as the cluster's
    condition, not by rejecting the command."""

    operation_id: Identifier
    cluster: ClusterId
    kubeconfig_path: str | None = Field(
        None, description="A kubeconfig file readable by discovery (kept as a reference)"
    )
    kubeconfig: str | None = Field(
        None,
        description="Inline kubeconfig text (YAML or JSON); redacted from dead letters",
        json_schema_extra={"secret": True},
    )


class RemoveCluster(Payload):
    """Stop watching a cluster and forget it: its apps, definitions and kubeconfig."""

    operation_id: Identifier
    cluster: ClusterId


class DefineApp(Payload):
    """Create or update a user-defined app (like Trident Protect's Application): the objects
    of `include` belong to it, ahead of automatic grouping. Its id is
    `<cluster>.<namespace>.<name>`."""

    operation_id: Identifier
    cluster: ClusterId
    namespace: DnsLabel = Field(description="The app's own namespace (part of its id)")
    name: DnsLabel
    include: list[NamespaceSelection] = Field(
        default_factory=list,
        description="Namespaces with optional label selectors; empty: all of `namespace`",
    )
    unmanaged: bool = Field(
        False,
        description="Not a definition: the discovered app of this id is unmanaged (`vessel "
        "app unmanage`), left out of the inventory until `UndefineApp` manages it again",
    )


class UndefineApp(Payload):
    """Unmanage a user-defined app (its objects go back to automatic grouping), or manage
    again a discovered app that was unmanaged."""

    operation_id: Identifier
    cluster: ClusterId
    namespace: DnsLabel
    name: DnsLabel


class PutBackend(Payload):
    """Add (or, as `update`, replace) a backend of the cluster at runtime. `backend` is a
    backend configuration as in the settings file (`name`, `type`, `path`,
    `capacity_bytes`, `pools`); it is validated by the provisioner, which answers with
    `provisioner.backend.added`/`updated` or `provisioner.backend.rejected`."""

    operation_id: Identifier
    backend: dict[str, Any] = Field(description="Backend configuration, as in the settings")


class RemoveBackend(Payload):
    """Remove a runtime or configured backend; refused while it still holds volumes."""

    operation_id: Identifier
    name: str = Field(min_length=1)


class CopySnapshot(Payload):
    """Copy repository snapshot `snapshot_id` from one bucket's repository into another's,
    moving only the data the target lacks (the target repository is made like the source:
    bucket setting `like`)."""

    transfer_id: Identifier
    operation_id: Identifier
    cluster: ClusterId
    source_bucket: Identifier
    snapshot_id: SnapshotId
    target_bucket: Identifier


class SendSnapshot(Payload):
    """Send repository snapshot `snapshot_id` of this cluster's `source_bucket` to the mover
    of `target_cluster`, which stores it in its `target_bucket`; only the blobs that
    repository lacks travel (it is made like the source: bucket setting `like`). Each mover
    needs only its own bucket."""

    transfer_id: Identifier
    operation_id: Identifier
    cluster: ClusterId = Field(description="The source cluster, whose mover sends")
    source_bucket: Identifier
    snapshot_id: SnapshotId
    target_cluster: ClusterId
    target_bucket: Identifier


class ForgetSnapshots(Payload):
    """Drop repository snapshots from a bucket's repository (the volumes of a deleted
    backup) and, with `prune`, delete the data no remaining snapshot references. Forgetting
    a snapshot that is already gone succeeds."""

    operation_id: Identifier
    cluster: ClusterId
    bucket: Identifier
    snapshot_ids: list[SnapshotId] = Field(default_factory=list)
    prune: bool = True
