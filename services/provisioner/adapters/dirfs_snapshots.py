"""Snapshots, clones and revert of the `dir` backend: `cp -a` copies.

With the `reflink` capability (detected at construction by trying it) copies share data
blocks with their source (`cp --reflink=always`, FICLONE); otherwise they are plain copies,
taking time and space in proportion to the data. Snapshots are not read-only: nothing on a
plain directory stops root from writing into one. There is no send/receive.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import BinaryIO

from services.provisioner.adapters.base import (
    SnapshotInfo,
    VolumeInfo,
    unsupported,
)
from services.provisioner.adapters.fsops import copy_tree, exchange
from services.provisioner.adapters.snapshot_area import SnapshotArea, prepare_clone


class DirSnapshotOps:
    """Mixed into `DirBackend`, which provides the attributes and volume methods below."""

    name: str
    type: str
    root: Path
    who: str
    reflink: bool
    snapshots: SnapshotArea

    def get_volume(self, volume_id: str) -> VolumeInfo | None:
        raise NotImplementedError

    def _require(self, volume_id: str) -> VolumeInfo:
        raise NotImplementedError

    def _check_capacity(self, needed: int, what: str) -> None:
        raise NotImplementedError

    def _staging(self, volume_id: str) -> Path:
        raise NotImplementedError

    def _finish(self, volume_id: str, staging: Path, size_bytes: int) -> VolumeInfo:
        raise NotImplementedError

    def _copy(self, source: Path, target: Path) -> None:
        copy_tree(self.who, source, target, reflink=self.reflink)

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
        shutil.rmtree(target, ignore_errors=True)  # an interrupted snapshot
        self._copy(volume.path, target)
        return self.snapshots.complete(volume_id, snapshot_id, volume.size_bytes)

    def delete_snapshot(self, volume_id: str, snapshot_id: str) -> None:
        self.snapshots.forget(volume_id, snapshot_id)
        shutil.rmtree(self.snapshots.path(volume_id, snapshot_id), ignore_errors=True)
        self.snapshots.tidy(volume_id)

    def revert_to_snapshot(self, volume_id: str, snapshot_id: str) -> VolumeInfo:
        volume = self._require(volume_id)
        snap = self.snapshots.require(volume_id, snapshot_id)
        staging = self.root / f".reverting-{volume_id}"
        shutil.rmtree(staging, ignore_errors=True)  # an interrupted revert
        self._copy(snap.path, staging)
        exchange(self.who, staging, volume.path)
        shutil.rmtree(staging)  # the content replaced
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
        self._copy(source, staging)
        return self._finish(new_volume_id, staging, size_bytes)

    def send_snapshot(
        self,
        volume_id: str,
        snapshot_id: str,
        out: BinaryIO,
        parent_snapshot_id: str | None = None,
    ) -> int:
        raise unsupported(
            self.name,
            self.type,
            f"sending snapshot {snapshot_id!r} of {volume_id!r}",
            "send_receive",
        )

    def compress_volume(self, volume_id: str) -> None:
        raise unsupported(self.name, self.type, f"compressing {volume_id!r}", "compression")

    def receive_snapshot(
        self, volume_id: str, stream: BinaryIO, size_bytes: int | None = None
    ) -> SnapshotInfo:
        raise unsupported(
            self.name, self.type, f"receiving a snapshot into {volume_id!r}", "send_receive"
        )
