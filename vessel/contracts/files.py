"""File-level access to a backed-up volume: browse, read and restore chosen paths.

The gateway authorizes a request by the backup's listing, then asks protection which
repository snapshot holds the volume (`BackupVolumeLookup`: protection verifies the sealed
record and the catalog head first, as before any restore), then asks a mover of the
cluster for entries and bytes (`FileQuery`). A restore of chosen paths is an operation
(`RestoreFiles`), whose mover writes through the same code as a whole restore.

Paths are `/`-separated from the volume's root; `.`, `..` and empty names are refused
(the mover looks them up in the snapshot's trees, never on a filesystem).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from vessel.contracts.models import ClusterId, Identifier, K8sName, Payload, SnapshotId

PAGE_MAX = 1000
"""Most entries in one listing page."""
READ_MAX = 512 << 10
"""Most bytes in one read: base64 in JSON stays under NATS's default 1 MiB message."""
PATHS_MAX = 100
"""Most paths one file restore names."""

EntryType = Literal["file", "dir", "symlink", "fifo", "chardev", "blockdev", "socket"]


class BackupVolumeLookup(Payload):
    """Which repository snapshot holds a volume of a backup (`vessel.query.protection.files`)."""

    bucket: Identifier
    backup_id: Identifier
    namespace: K8sName
    claim: K8sName


class BackupVolumeFound(Payload):
    cluster: ClusterId = Field(description="The cluster the backup was taken in")
    snapshot_id: SnapshotId
    bytes: int = Field(0, ge=0)


class FileQuery(Payload):
    """A read of one repository snapshot, answered by a mover (`vessel.query.mover.<c>.files`):
    `list` the directory at `path` (entries `offset` to `offset + limit`), `stat` the entry,
    or `read` up to `limit` bytes of the file from `offset`."""

    bucket: Identifier
    snapshot_id: SnapshotId
    action: Literal["list", "stat", "read"]
    path: str = Field("/", max_length=4096)
    offset: int = Field(0, ge=0)
    limit: int = Field(PAGE_MAX, ge=1, le=READ_MAX)


class FileEntry(Payload):
    path: str
    type: EntryType
    size: int = Field(0, ge=0, description="A file's size; a directory's bytes in its subtree")
    mode: int = Field(0, ge=0)
    uid: int = 0
    gid: int = 0
    mtime_ns: int = 0
    target: str = Field("", description="A symbolic link's target")


class FileListing(Payload):
    """The answer to `list` (a page of `entries`) and `stat` (the entry alone)."""

    entry: FileEntry
    entries: list[FileEntry] = Field(default_factory=list)
    total: int = Field(0, ge=0, description="Entries in the whole directory")


class FileBytes(Payload):
    """The answer to `read`: `data` (base64) from `offset`; `size` is the whole file's."""

    path: str
    offset: int = Field(ge=0)
    size: int = Field(ge=0)
    data: str


class RestoreFiles(Payload):
    """Write `paths` of a backed-up volume into a claim: the same claim (default) or
    another, in the backup's cluster or `target_cluster`, under `target_dir` of it."""

    operation_id: Identifier
    bucket: Identifier
    backup_id: Identifier
    namespace: K8sName
    claim: K8sName
    paths: list[str] = Field(min_length=1, max_length=PATHS_MAX)
    target_cluster: ClusterId
    target_namespace: K8sName
    target_claim: K8sName
    target_dir: str = Field("", max_length=4096)
    requested_by: str = "anonymous"


class FilesRestoreEvent(Payload):
    """A file restore ended: `files` and `bytes` written, or `message` saying why not."""

    operation_id: Identifier
    backup_id: Identifier
    namespace: str
    claim: str
    target_cluster: ClusterId
    target_namespace: str
    target_claim: str
    paths: list[str] = Field(default_factory=list)
    target_dir: str = ""
    files: int = Field(0, ge=0)
    bytes: int = Field(0, ge=0)
    message: str = ""
