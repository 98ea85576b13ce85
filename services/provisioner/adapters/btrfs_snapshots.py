"""Snapshots, clones, revert and send/receive of the `btrfs` backend.

A snapshot is a read-only subvolume snapshot in the snapshot area (constant time, blocks
shared with the volume); a clone is a writable snapshot given its own qgroup limit; a revert
swaps a writable snapshot of the snapshot in place of the volume with one atomic
`renameat2(RENAME_EXCHANGE)`. All through the `btrfs` command (`btrfs_cli`).
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from services.provisioner.adapters import btrfs_cli as cli
from services.provisioner.adapters.base import (
    SnapshotInfo,
    VolumeExists,
    VolumeInfo,
    check_snapshot_id,
)
from services.provisioner.adapters.fsops import exchange
from services.provisioner.adapters.snapshot_area import SnapshotArea, prepare_clone


class BtrfsSnapshotOps:
    """Mixed into `BtrfsBackend`, which provides the attributes and volume methods below."""

    name: str
    root: Path
    who: str
    snapshots: SnapshotArea

    def get_volume(self, volume_id: str) -> VolumeInfo | None:
        raise NotImplementedError

    def _require(self, volume_id: str) -> VolumeInfo:
        raise NotImplementedError

    def _check_capacity(self, needed: int, what: str) -> None:
        raise NotImplementedError

    def _staging(self, volume_id: str) -> Path:
        raise NotImplementedError

    def _remove_leftover(self, path: Path) -> None:
        if path.exists():
            cli.delete_subvolume(self.who, path)

    def get_snapshot(self, volume_id: str, snapshot_id: str) -> SnapshotInfo | None:
        return self.snapshots.get(volume_id, snapshot_id)

    def list_snapshots(self, volume_id: str) -> list[SnapshotInfo]:
        return self.snapshots.list(volume_id)

    def create_snapshot(self, volume_id: str, snapshot_id: str) -> SnapshotInfo:
        existing = self.snapshots.get(volume_id, snapshot_id)
        if existing is not None:
            return existing
        volume = self._require(volume_id)
        self.snapshots.directory(volume_id)
        target = self.snapshots.path(volume_id, snapshot_id)
        self._remove_leftover(target)
        cli.snapshot(self.who, volume.path, target, read_only=True)
        return self.snapshots.complete(volume_id, snapshot_id, volume.size_bytes)

    def delete_snapshot(self, volume_id: str, snapshot_id: str) -> None:
        self.snapshots.forget(volume_id, snapshot_id)
        self._remove_leftover(self.snapshots.path(volume_id, snapshot_id))
        self.snapshots.tidy(volume_id)

    def revert_to_snapshot(self, volume_id: str, snapshot_id: str) -> VolumeInfo:
        volume = self._require(volume_id)
        snap = self.snapshots.require(volume_id, snapshot_id)
        staging = self.root / f".reverting-{volume_id}"
        self._remove_leftover(staging)  # an interrupted revert, before or after the swap
        cli.snapshot(self.who, snap.path, staging, read_only=False)
        cli.set_limit(self.who, staging, volume.size_bytes)
        exchange(self.who, staging, volume.path)
        cli.delete_subvolume(self.who, staging)  # the content replaced
        return volume

    def clone_volume(
        self,
        source_volume_id: str,
        new_volume_id: str,
        size_bytes: int,
        snapshot_id: str | None = None,
    ) -> VolumeInfo:
        source = prepare_clone(self, source_volume_id, new_volume_id, size_bytes, snapshot_id)
        if isinstance(source, VolumeInfo):
            return source  # made by an earlier call
        staging = self._staging(new_volume_id)
        cli.snapshot(self.who, source, staging, read_only=False)
        cli.set_limit(self.who, staging, size_bytes)
        staging.chmod(0o777)
        staging.rename(self.root / new_volume_id)  # last, as for create
        return VolumeInfo(new_volume_id, self.root / new_volume_id, size_bytes)

    def send_snapshot(
        self,
        volume_id: str,
        snapshot_id: str,
        out: BinaryIO,
        parent_snapshot_id: str | None = None,
    ) -> int:
        snap = self.snapshots.require(volume_id, snapshot_id)
        parent = None
        if parent_snapshot_id is not None:
            parent = self.snapshots.require(volume_id, parent_snapshot_id).path
        return cli.send(f"{self.who}, snapshot {snapshot_id!r}", snap.path, out, parent)

    def receive_snapshot(
        self, volume_id: str, stream: BinaryIO, size_bytes: int | None = None
    ) -> SnapshotInfo:
        who = f"{self.who}, receiving into volume {volume_id!r}"
        head = cli.read_stream_head(who, stream)
        check_snapshot_id(self.name, head.name)
        existing = self.snapshots.get(volume_id, head.name)
        if existing is not None:
            if cli.subvolume_field(self.who, existing.path, "Received UUID") == head.uuid:
                return existing  # received before
            raise VolumeExists(
                f"backend {self.name}: volume {volume_id!r} already has a snapshot {head.name!r}"
            )
        # Received in place: a read-only subvolume cannot move to another directory, and
        # renaming it would not matter anyway (receive finds parents by uuid).
        target = self.snapshots.path(volume_id, head.name)
        self._remove_leftover(target)
        cli.receive(who, self.snapshots.directory(volume_id), head, stream)
        if size_bytes is None:
            cli.sync(self.who, self.root)
            group = cli.qgroup(self.who, target)
            size_bytes = group.referenced if group else 0
        return self.snapshots.complete(volume_id, head.name, size_bytes)
