"""Payloads of group snapshots: the volumes of several claims of one cluster snapshotted
back to back by that cluster's provisioner, as the volume half of an app snapshot.

Each volume's snapshot is crash-consistent; the group is taken within `spread_seconds`
(the time between the start of the first backend snapshot and the end of the last), not
at one instant: cross-volume consistency needs the app quiesced by hooks.
"""

from __future__ import annotations

from pydantic import Field

from vessel.contracts.models import ClusterId, Identifier, K8sName, LabelValue, Payload


class GroupClaim(Payload):
    namespace: K8sName
    claim: K8sName


class SnapshotGroup(Payload):
    """Snapshot every claim's volume; answered by `provisioner.snapshot.group.created` or
    `.failed`. Idempotent by `group_id`: a repeat reports the group already taken."""

    operation_id: Identifier
    group_id: LabelValue = Field(
        description="Names the group: label `vessel.io/group` of its VolumeSnapshots"
    )
    claims: list[GroupClaim] = Field(min_length=1, max_length=500)
    snapshot_class: K8sName | None = Field(
        None, description="VolumeSnapshotClass of the snapshots; none: the default of Vessel"
    )


class GroupMember(Payload):
    """One claim of a group: its VolumeSnapshot and read-only data, or why there is none."""

    namespace: K8sName
    claim: K8sName
    volume_snapshot: str = Field("", description="The ready VolumeSnapshot in the namespace")
    snapshot_id: str = Field("", description="The backend snapshot (`snapshot-<uid>`)")
    path: str = Field("", description="Node-local path of the read-only snapshot data")
    bytes: int = Field(0, ge=0, description="Size of the volume when it was taken")
    error: str = ""


class GroupSnapshotResult(Payload):
    cluster: ClusterId
    operation_id: Identifier
    group_id: LabelValue
    members: list[GroupMember] = Field(default_factory=list)
    spread_seconds: float = Field(
        0.0, ge=0, description="From the start of the first backend snapshot to the end of the last"
    )
    error: str = Field("", description="Why no snapshot was taken (`.failed` only)")
