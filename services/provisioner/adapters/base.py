"""The `StorageBackend` protocol: what the provisioner needs from a place that holds volumes.

Contract:
- Calls are blocking (run them in a thread). Volume and snapshot ids match `VOLUME_ID`;
  any other id raises `InvalidVolume` naming it.
- Repeating a call is safe:
  - `create_volume` of an existing volume returns it; `delete_volume` of a missing one
    succeeds. `clone_volume` to an existing volume id returns that volume.
  - `expand_volume` to the current size returns the volume unchanged.
  - `create_snapshot` of an existing snapshot id returns that snapshot (taken earlier);
    `delete_snapshot` of a missing one succeeds.
  - `revert_to_snapshot` repeated gives the same content.
  - `receive_snapshot` of a stream already received returns the snapshot it made.
  - `import_volume` is the exception: it moves something, so a repeat after success
    raises `VolumeExists` (look the volume up with `get_volume` first).
- Nothing looks finished before it is: a volume appears under its final name only when
  complete (size limit applied, data in place), a snapshot only once its metadata file is
  written. Leftovers of an interrupted create, clone, snapshot, revert or receive are
  removed by the next attempt.
- Snapshots live in a hidden per-backend area, `<root>/.snapshots/<volume_id>/<snapshot_id>`,
  never counted as volumes nor against `capacity_bytes`. They outlive their volume (as CSI
  snapshots do): deleting a volume keeps its snapshots, which can still be listed, cloned
  and deleted. `list_snapshots` gives the finished ones, oldest first (none: empty list).
- Sizes only grow: `expand_volume` below the current size raises `InvalidVolume` naming
  both sizes; a clone must be at least as large as its source (volume, or snapshot's
  `size_bytes`). Growth, clones and imports are checked against free capacity.
- `import_volume` takes a directory (dir) or writable subvolume (btrfs) on the backend's
  own filesystem and renames it into place, so files keep their inodes; its size defaults
  to the subvolume's qgroup limit or else the bytes it holds. Paths elsewhere, the root,
  volumes and snapshots of the backend are refused with `InvalidVolume` naming the path.
- Clones and reverted volumes share no state with their source: deleting the source volume
  or snapshot afterwards leaves them intact.
- Errors: `InsufficientCapacity`, `InvalidVolume` (with `NotFound` for a missing volume or
  snapshot), `VolumeExists` and `Unsupported` are permanent for the request;
  `BackendUnavailable` is temporary; a plain `BackendError` (a failed filesystem command)
  may pass on retry. Messages name the backend and the volume, snapshot or
  path concerned. A call whose capability is absent raises `Unsupported`.
- Capabilities:
  - `enforces_size`: the filesystem enforces what the backend promises: writes past the
    size fail, and snapshots are read-only.
  - `expand`: `expand_volume` grows a volume (never shrinks it).
  - `snapshots`: `create_snapshot`, `list_snapshots`, `delete_snapshot`.
  - `revert`: `revert_to_snapshot` swaps in the snapshot's content at the same path,
    keeping the volume's size. Unmount first: a mount made before keeps the old content.
  - `clones`: `clone_volume` from a volume or from a snapshot.
  - `instant_clones`: snapshots and clones take constant time and share data blocks.
  - `reflink`: copies (snapshots, clones, reverts) share data blocks with their source.
  - `import`: `import_volume` adopts an existing directory or subvolume by renaming it.
  - `send_receive`: `send_snapshot` writes a (possibly incremental) stream of a snapshot,
    `receive_snapshot` turns one into a snapshot here.
  - `compression`: `compress_volume` has what is written to the volume from then on stored
    compressed (btrfs: zstd), so the volume holds more than its size of compressible data;
    repeating it is harmless.
  - `dependent_clones`: clones keep needing the snapshot they came from, so the provisioner
    refuses to delete a snapshot while a clone of it lives. Neither current backend sets
    it: btrfs and dir clones are independent of their source (see above).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

VOLUME_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,127}$")


class BackendError(Exception):
    pass


class InsufficientCapacity(BackendError):
    pass


class InvalidVolume(BackendError):
    pass


class NotFound(InvalidVolume):
    """The volume or snapshot a call names does not exist."""


class VolumeExists(BackendError):
    """The id asked for is already taken by a volume or snapshot."""


class Unsupported(BackendError):
    """The backend lacks the capability the call needs."""


class BackendUnavailable(BackendError):
    pass


@dataclass(frozen=True)
class VolumeInfo:
    volume_id: str
    path: Path
    size_bytes: int


@dataclass(frozen=True)
class VolumeUsage:
    used_bytes: int
    size_bytes: int


@dataclass(frozen=True)
class SnapshotInfo:
    volume_id: str
    snapshot_id: str
    path: Path
    size_bytes: int  # the volume's size when taken: a clone of it needs at least this much
    created_at: float  # seconds since the epoch


class StorageBackend(Protocol):
    name: str
    type: str
    capabilities: frozenset[str]

    def create_volume(self, volume_id: str, size_bytes: int) -> VolumeInfo: ...
    def delete_volume(self, volume_id: str) -> None: ...
    def get_volume(self, volume_id: str) -> VolumeInfo | None: ...
    def free_bytes(self) -> int: ...
    def expand_volume(self, volume_id: str, new_size_bytes: int) -> VolumeInfo: ...
    def usage(self, volume_id: str) -> VolumeUsage: ...

    def create_snapshot(self, volume_id: str, snapshot_id: str) -> SnapshotInfo: ...
    def get_snapshot(self, volume_id: str, snapshot_id: str) -> SnapshotInfo | None: ...
    def list_snapshots(self, volume_id: str) -> list[SnapshotInfo]: ...
    def delete_snapshot(self, volume_id: str, snapshot_id: str) -> None: ...
    def revert_to_snapshot(self, volume_id: str, snapshot_id: str) -> VolumeInfo: ...

    def clone_volume(
        self,
        source_volume_id: str,
        new_volume_id: str,
        size_bytes: int,
        snapshot_id: str | None = None,
    ) -> VolumeInfo: ...

    def import_volume(
        self, volume_id: str, existing_path: Path, size_bytes: int | None = None
    ) -> VolumeInfo:
        """Adopt `existing_path` without copying; `size_bytes` defaults to its current limit
        (btrfs) or, without one, to the bytes it uses."""
        ...

    def compress_volume(self, volume_id: str) -> None:
        """Store what is written to the volume from now on compressed."""
        ...

    def send_snapshot(
        self,
        volume_id: str,
        snapshot_id: str,
        out: BinaryIO,
        parent_snapshot_id: str | None = None,
    ) -> int:
        """Write the snapshot's stream to `out` (only what changed since the parent, when
        given); returns the bytes written."""
        ...

    def receive_snapshot(
        self, volume_id: str, stream: BinaryIO, size_bytes: int | None = None
    ) -> SnapshotInfo:
        """Store a sent stream as a snapshot of `volume_id` (named as on the sender); its
        size defaults to the bytes it references."""
        ...


def check_volume_id(backend: str, volume_id: str) -> str:
    if not VOLUME_ID.match(volume_id):
        raise InvalidVolume(f"backend {backend}: invalid volume id {volume_id!r}")
    return volume_id


def check_snapshot_id(backend: str, snapshot_id: str) -> str:
    if not VOLUME_ID.match(snapshot_id):
        raise InvalidVolume(f"backend {backend}: invalid snapshot id {snapshot_id!r}")
    return snapshot_id


def unsupported(backend: str, type_: str, what: str, capability: str) -> Unsupported:
    return Unsupported(
        f"backend {backend} ({type_}): {what} is not supported (no {capability!r} capability)"
    )
