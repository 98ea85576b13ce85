"""The one list of every event and command Vessel puts on the bus.

Subjects: events `vessel.evt.<domain>.<entity>.<verb>`, commands
`vessel.cmd.<service>[.<cluster>].<verb>`. CloudEvents type:
`io.vessel.<domain>.<entity>.<verb>.v1` (commands: `io.vessel.cmd.<service>.<verb>.v1`).
`docs/events.md` is generated from this module (`python -m vessel.contracts.docs`).
"""

from __future__ import annotations

from vessel.contracts import buckets as bkt
from vessel.contracts import commands as cmd
from vessel.contracts import events as evt
from vessel.contracts import files, hooks, platform
from vessel.contracts import group_snapshots as grp
from vessel.contracts import protection as prot
from vessel.contracts import verification as ver
from vessel.contracts.message import Message as Message  # re-exported: the catalog's type
from vessel.contracts.message import _command, _event

EVENTS_STREAM = "VESSEL_EVENTS"
COMMANDS_STREAM = "VESSEL_COMMANDS"
EVENT_SUBJECTS = "vessel.evt.>"
COMMAND_SUBJECTS = "vessel.cmd.>"


VOLUME_PROVISIONED = _event(
    "provisioner.volume.provisioned",
    evt.VolumeProvisioned,
    "A claim got a volume on a backend, its PV was created and bound to the claim.",
)
VOLUME_FAILED = _event(
    "provisioner.volume.failed",
    evt.VolumeFailed,
    "A claim cannot be provisioned (unknown class, no capacity...); it stays Pending.",
)
VOLUME_DELETED = _event(
    "provisioner.volume.deleted",
    evt.VolumeDeleted,
    "Reclaim policy Delete: the backend volume and its PV were removed after the claim went.",
)
VOLUME_RETAINED = _event(
    "provisioner.volume.retained",
    evt.VolumeRetained,
    "Reclaim policy Retain: the claim went; the backend volume and its Released PV stay.",
)
VOLUME_EXPANDED = _event(
    "provisioner.volume.expanded",
    evt.VolumeExpanded,
    "A volume grew: backend first, then the PV's capacity, then the claim's status.",
)
VOLUME_IMPORTED = _event(
    "provisioner.volume.imported",
    evt.VolumeImported,
    "An existing directory or subvolume was adopted, without copying, as a claim's volume.",
)
SNAPSHOT_CREATED = _event(
    "provisioner.snapshot.created",
    evt.SnapshotChanged,
    "A VolumeSnapshot of a Vessel volume was taken on its backend and is ready to use.",
)
SNAPSHOT_DELETED = _event(
    "provisioner.snapshot.deleted",
    evt.SnapshotChanged,
    "A VolumeSnapshot with deletion policy Delete was removed from its backend.",
)
CLONE_CREATED = _event(
    "provisioner.clone.created",
    evt.CloneCreated,
    "A claim's volume was cloned from another claim or from a VolumeSnapshot (dataSource).",
)
SNAPSHOT_REVERTED = _event(
    "provisioner.snapshot.reverted",
    evt.SnapshotReverted,
    "A claim's volume was reverted in place to a VolumeSnapshot of it (annotation "
    "vessel.io/revert-to).",
)
GROUP_SNAPSHOT_CREATED = _event(
    "provisioner.snapshot.group.created",
    grp.GroupSnapshotResult,
    "The claims of a group snapshot command were snapshotted back to back; each member names "
    "its ready VolumeSnapshot and read-only data, or its error; `spread_seconds` is measured.",
)
GROUP_SNAPSHOT_FAILED = _event(
    "provisioner.snapshot.group.failed",
    grp.GroupSnapshotResult,
    "No claim of a group snapshot command could be snapshotted; `error` and members say why.",
)
POOL_CAPACITY_LOW = _event(
    "provisioner.pool.capacity.low",
    evt.PoolCapacityLow,
    "A pool's free space fell below its low_capacity_percent after a provisioning or "
    "expansion; once per crossing.",
)
BACKEND_ADDED = _event(
    "provisioner.backend.added",
    evt.BackendChanged,
    "A backend was added at runtime, validated, and serves claims now.",
)
BACKEND_UPDATED = _event(
    "provisioner.backend.updated",
    evt.BackendChanged,
    "A backend's configuration (path, capacity, pools) was replaced at runtime.",
)
BACKEND_REMOVED = _event(
    "provisioner.backend.removed",
    evt.BackendChanged,
    "A backend holding no volumes was removed at runtime.",
)
BACKEND_REJECTED = _event(
    "provisioner.backend.rejected",
    evt.BackendRejected,
    "A backend add/update/remove command was refused; `error` says what was wrong.",
)
APP_DISCOVERED = _event(
    "discovery.app.discovered", evt.AppChanged, "An application appeared in a cluster."
)
APP_CHANGED = _event(
    "discovery.app.changed", evt.AppChanged, "An application's resources or state changed."
)
APP_REMOVED = _event(
    "discovery.app.removed", evt.AppChanged, "An application no longer exists in its cluster."
)
CLUSTER_REGISTERED = _event(
    "discovery.cluster.registered",
    evt.ClusterChanged,
    "A cluster was registered (by command or from the settings) and discovery started on it.",
)
CLUSTER_UNREACHABLE = _event(
    "discovery.cluster.unreachable",
    evt.ClusterChanged,
    "A cluster's API server cannot be used: invalid kubeconfig, unreachable server or "
    "rejected credentials; `reason` and `conditions` say which.",
)
CLUSTER_RECOVERED = _event(
    "discovery.cluster.recovered",
    evt.ClusterChanged,
    "An unreachable cluster answers again; its inventory resumed where it stopped.",
)
CLUSTER_REMOVED = _event(
    "discovery.cluster.removed",
    evt.ClusterChanged,
    "A cluster was removed: discovery stopped watching it and forgot its credentials.",
)
BACKUP_STARTED = _event(
    "protection.backup.started", evt.BackupEvent, "A backup of an app was accepted and began."
)
BACKUP_COMPLETED = _event(
    "protection.backup.completed",
    evt.BackupEvent,
    "Every resource and volume byte of a backup is stored in the bucket, catalog last.",
)
BACKUP_FAILED = _event("protection.backup.failed", evt.BackupEvent, "A backup ended in failure.")
RESTORE_STARTED = _event(
    "protection.restore.started", evt.RestoreEvent, "A restore was accepted and began."
)
RESTORE_COMPLETED = _event(
    "protection.restore.completed",
    evt.RestoreEvent,
    "Resources are recreated in the target cluster and every volume's data is written back.",
)
RESTORE_FAILED = _event(
    "protection.restore.failed", evt.RestoreEvent, "A restore ended in failure."
)
FILES_RESTORED = _event(
    "protection.files.restored",
    files.FilesRestoreEvent,
    "Chosen paths of a backed-up volume were written into a claim (vessel backup restore-files).",
)
FILES_RESTORE_FAILED = _event(
    "protection.files.failed",
    files.FilesRestoreEvent,
    "A restore of chosen paths ended in failure; the message says why.",
)
PLATFORM_RECOVERED = _event(
    "protection.platform.recovered",
    platform.PlatformRecovered,
    "A bucket's platform export was replayed: each policy sent as its ordinary command.",
)
VERIFICATION_PASSED = _event(
    "protection.verification.passed",
    ver.VerificationEvent,
    "A backup was restored into a scratch namespace, checked file by file and object by "
    "object (and probed by the app's post-restore hooks), and the copy deleted.",
)
VERIFICATION_FAILED = _event(
    "protection.verification.failed",
    ver.VerificationEvent,
    "A backup's verification found it does not restore as backed up; the message says why.",
)
SNAPSHOT_STARTED = _event(
    "protection.snapshot.started", evt.AppSnapshotEvent, "An app snapshot was accepted and began."
)
SNAPSHOT_COMPLETED = _event(
    "protection.snapshot.completed",
    evt.AppSnapshotEvent,
    "An app's resources are archived and every claim's VolumeSnapshot is ready.",
)
SNAPSHOT_FAILED = _event(
    "protection.snapshot.failed", evt.AppSnapshotEvent, "An app snapshot ended in failure."
)
BACKUP_DELETED = _event(
    "protection.backup.deleted",
    evt.BackupEvent,
    "A backup's catalog entry, resource archive and repository snapshots were removed.",
)
APP_SNAPSHOT_DELETED = _event(
    "protection.snapshot.deleted",
    evt.AppSnapshotEvent,
    "An app snapshot's VolumeSnapshots, resource archive and record were removed.",
)
SCHEDULE_CHANGED = _event(
    "protection.schedule.changed", prot.ScheduleSpec, "A schedule was created or replaced."
)
SCHEDULE_REMOVED = _event(
    "protection.schedule.removed", prot.ScheduleSpec, "A schedule was removed."
)
SCHEDULE_FIRED = _event(
    "protection.schedule.fired",
    prot.ScheduleFired,
    "A schedule's run time came: exactly one protection replica started its run.",
)
RUN_MISSED = _event(
    "protection.run.missed",
    prot.RunMissed,
    "A schedule's run time passed without a run (service down, paused by an in-place "
    "restore); reported once per missed time.",
)
OPERATION_CANCELED = _event(
    "protection.operation.canceled",
    prot.OperationCanceled,
    "A running operation was canceled on request; its transfers stop and report failure.",
)
HOOK_CHANGED = _event(
    "protection.hook.changed", hooks.ExecHook, "An execution hook was created or replaced."
)
HOOK_REMOVED = _event("protection.hook.removed", hooks.ExecHook, "An execution hook was removed.")
HOOK_FAILED = _event(
    "protection.hook.failed",
    hooks.HookFailed,
    "A hook run in one container failed (non-zero exit, could not start) or timed out.",
)
CLONE_STARTED = _event(
    "protection.clone.started", prot.CompositeEvent, "A clone of an app was accepted and began."
)
CLONE_COMPLETED = _event(
    "protection.clone.completed",
    prot.CompositeEvent,
    "The app's copy runs in the target namespace or cluster with its data.",
)
CLONE_FAILED = _event(
    "protection.clone.failed", prot.CompositeEvent, "A clone ended in failure at `step`."
)
MIGRATION_STARTED = _event(
    "protection.migration.started", prot.CompositeEvent, "A migration was accepted and began."
)
MIGRATION_COMPLETED = _event(
    "protection.migration.completed",
    prot.CompositeEvent,
    "The app runs in the target; the source's workloads were scaled to zero if asked.",
)
MIGRATION_FAILED = _event(
    "protection.migration.failed",
    prot.CompositeEvent,
    "A migration ended in failure at `step`; the source keeps running.",
)
BUCKET_ADDED = _event(
    "protection.bucket.added",
    bkt.BucketChanged,
    "A bucket was registered: its Secret keys resolved and it answered with them.",
)
BUCKET_UPDATED = _event(
    "protection.bucket.updated",
    bkt.BucketChanged,
    "A registered bucket was re-pointed or given other Secret references.",
)
BUCKET_REMOVED = _event(
    "protection.bucket.removed",
    bkt.BucketChanged,
    "A registered bucket was forgotten; its objects stay in S3.",
)
BUCKET_REJECTED = _event(
    "protection.bucket.rejected",
    bkt.BucketRejected,
    "A bucket registration or removal was refused; `error` says what was wrong.",
)
TRANSFER_COMPLETED = _event(
    "mover.transfer.completed", evt.TransferResult, "The mover finished copying a volume."
)
TRANSFER_PROGRESS = _event(
    "mover.transfer.progress",
    evt.TransferProgress,
    "A running transfer's files, bytes, rate and ETA, about once a second.",
)
TRANSFER_FAILED = _event(
    "mover.transfer.failed", evt.TransferResult, "The mover could not copy a volume."
)
SNAPSHOTS_FORGOTTEN = _event(
    "mover.snapshots.forgotten",
    evt.SnapshotsForgotten,
    "Repository snapshots were forgotten (and unreferenced data pruned), or `error` says why not.",
)
DEAD_LETTERED = _event(
    "system.message.deadlettered",
    evt.DeadLettered,
    "A message was removed from processing: invalid payload, permanent error or too many "
    "deliveries.",
)

CREATE_BACKUP = _command(
    "protection", "backup", cmd.CreateBackup, "Back up an application to a bucket.", False
)
CREATE_RESTORE = _command(
    "protection", "restore", cmd.CreateRestore, "Restore a backup into a cluster.", False
)
RESTORE_FILES = _command(
    "protection",
    "files.restore",
    files.RestoreFiles,
    "Restore chosen paths of a backed-up volume into a claim, without restoring the volume.",
    False,
)
RECOVER_PLATFORM = _command(
    "protection",
    "platform.recover",
    platform.RecoverPlatform,
    "Replay the policies a bucket's platform export holds (schedules, hooks, app "
    "definitions, registered buckets) on this Vessel.",
    False,
)
CREATE_VERIFICATION = _command(
    "protection",
    "verify",
    ver.CreateVerification,
    "Verify that a backup restores: into a scratch namespace, checked, then deleted.",
    False,
)
CREATE_SNAPSHOT = _command(
    "protection",
    "snapshot",
    prot.CreateAppSnapshot,
    "Snapshot an application: resources archived, volumes snapshotted as one group.",
    False,
)
DELETE_BACKUP = _command(
    "protection", "backup.delete", prot.DeleteBackup, "Delete a backup from its bucket.", False
)
DELETE_SNAPSHOT = _command(
    "protection",
    "snapshot.delete",
    prot.DeleteAppSnapshot,
    "Delete an app snapshot and its VolumeSnapshots.",
    False,
)
PUT_SCHEDULE = _command(
    "protection", "schedule.put", prot.PutSchedule, "Create or replace an app's schedule.", False
)
REMOVE_SCHEDULE = _command(
    "protection", "schedule.remove", prot.RemoveSchedule, "Remove a schedule.", False
)
CANCEL_OPERATION = _command(
    "protection",
    "operation.cancel",
    prot.CancelOperation,
    "Cancel a running operation; a finished one is left as it ended.",
    False,
)
PUT_HOOK = _command(
    "protection", "hook.put", hooks.PutHook, "Create or replace an app's execution hook.", False
)
REMOVE_HOOK = _command(
    "protection", "hook.remove", hooks.RemoveHook, "Remove an app's execution hook.", False
)
CREATE_CLONE = _command(
    "protection",
    "clone",
    prot.CreateClone,
    "Clone an app from itself, a snapshot or a backup into a namespace or cluster.",
    False,
)
CREATE_MIGRATION = _command(
    "protection",
    "migrate",
    prot.CreateMigration,
    "Migrate an app: backup, restore into the target, scale the source down.",
    False,
)
PUT_BUCKET = _command(
    "protection",
    "bucket.put",
    bkt.PutBucket,
    "Register or update a bucket (credentials and password as Secret key references).",
    False,
)
REMOVE_BUCKET = _command(
    "protection", "bucket.remove", bkt.RemoveBucket, "Forget a registered bucket.", False
)
MOVE_TO_BUCKET = _command(
    "mover", "backup", cmd.MoveToBucket, "Copy a volume's files into a bucket.", True
)
MOVE_FROM_BUCKET = _command(
    "mover", "restore", cmd.MoveFromBucket, "Write a volume's files back from a bucket.", True
)
COPY_SNAPSHOT = _command(
    "mover",
    "copy",
    cmd.CopySnapshot,
    "Copy a volume's snapshot between buckets' repositories, moving only missing data.",
    True,
)
SEND_SNAPSHOT = _command(
    "mover",
    "send",
    cmd.SendSnapshot,
    "Send a volume's snapshot to another cluster's mover, which stores it in its own bucket; "
    "only the data that bucket's repository lacks travels.",
    True,
)
FORGET_SNAPSHOTS = _command(
    "mover",
    "forget",
    cmd.ForgetSnapshots,
    "Forget a bucket's repository snapshots and prune the data nothing references any more.",
    True,
)
REGISTER_CLUSTER = _command(
    "discovery",
    "cluster.register",
    cmd.RegisterCluster,
    "Register a cluster with a kubeconfig (file path or inline text) and discover its apps.",
    False,
)
UPDATE_CLUSTER = _command(
    "discovery",
    "cluster.update",
    cmd.RegisterCluster,
    "Replace a registered cluster's kubeconfig; its inventory resumes, nothing is re-added.",
    False,
)
REMOVE_CLUSTER = _command(
    "discovery", "cluster.remove", cmd.RemoveCluster, "Stop watching a cluster, forget it.", False
)
DEFINE_APP = _command(
    "discovery",
    "app.define",
    cmd.DefineApp,
    "Create or update a user-defined app: namespaces with optional label selectors.",
    False,
)
UNDEFINE_APP = _command(
    "discovery",
    "app.undefine",
    cmd.UndefineApp,
    "Unmanage a user-defined app; its objects return to automatic grouping.",
    False,
)
ADD_BACKEND = _command(
    "provisioner",
    "backend.add",
    cmd.PutBackend,
    "Add a backend to a cluster's provisioner at runtime; kept in KV `backends`.",
    True,
)
UPDATE_BACKEND = _command(
    "provisioner",
    "backend.update",
    cmd.PutBackend,
    "Replace a backend's configuration at runtime; kept in KV `backends`.",
    True,
)
REMOVE_BACKEND = _command(
    "provisioner",
    "backend.remove",
    cmd.RemoveBackend,
    "Remove a backend holding no volumes from a cluster's provisioner.",
    True,
)
SNAPSHOT_GROUP = _command(
    "provisioner",
    "snapshot.group",
    grp.SnapshotGroup,
    "Snapshot the volumes of several claims back to back as one group of VolumeSnapshots.",
    True,
)

ALL: tuple[Message, ...] = tuple(v for v in list(globals().values()) if isinstance(v, Message))
BY_TYPE: dict[str, Message] = {m.type: m for m in ALL}
