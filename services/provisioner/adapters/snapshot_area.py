"""The hidden snapshot area both backends share.

A snapshot of volume `v` named `s` is the tree `<root>/.snapshots/v/s` plus the metadata
file `<root>/.snapshots/v/s.json` (size of the volume when taken, creation time). The
metadata is written last, atomically: a tree without it is the leftover of an interrupted
snapshot, which the next attempt removes. The leading dot keeps the area out of the volume
listing and the capacity accounting.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Protocol

from services.provisioner.adapters.base import (
    VOLUME_ID,
    InvalidVolume,
    NotFound,
    SnapshotInfo,
    VolumeInfo,
    check_snapshot_id,
    check_volume_id,
)

SNAPSHOTS_DIR = ".snapshots"


class SnapshotArea:
    def __init__(self, backend: str, root: Path) -> None:
        self.backend = backend
        self.base = root / SNAPSHOTS_DIR

    def path(self, volume_id: str, snapshot_id: str) -> Path:
        check_volume_id(self.backend, volume_id)
        check_snapshot_id(self.backend, snapshot_id)
        return self.base / volume_id / snapshot_id

    def directory(self, volume_id: str) -> Path:
        """The directory holding the volume's snapshots, created on demand."""
        self.base.mkdir(mode=0o700, exist_ok=True)
        directory = self.base / check_volume_id(self.backend, volume_id)
        directory.mkdir(mode=0o700, exist_ok=True)
        return directory

    def _meta(self, volume_id: str, snapshot_id: str) -> Path:
        return self.base / volume_id / f"{snapshot_id}.json"

    def get(self, volume_id: str, snapshot_id: str) -> SnapshotInfo | None:
        path = self.path(volume_id, snapshot_id)
        try:
            meta = json.loads(self._meta(volume_id, snapshot_id).read_text())
        except FileNotFoundError:
            return None
        if not path.is_dir():
            return None
        return SnapshotInfo(
            volume_id, snapshot_id, path, int(meta["size_bytes"]), float(meta["created_at"])
        )

    def require(self, volume_id: str, snapshot_id: str) -> SnapshotInfo:
        info = self.get(volume_id, snapshot_id)
        if info is None:
            raise NotFound(
                f"backend {self.backend}: volume {volume_id!r} has no snapshot {snapshot_id!r}"
            )
        return info

    def list(self, volume_id: str) -> list[SnapshotInfo]:
        """The volume's finished snapshots, oldest first."""
        directory = self.base / check_volume_id(self.backend, volume_id)
        if not directory.is_dir():
            return []
        found = []
        for meta in directory.glob("*.json"):
            if VOLUME_ID.match(meta.stem):
                info = self.get(volume_id, meta.stem)
                if info is not None:
                    found.append(info)
        return sorted(found, key=lambda s: (s.created_at, s.snapshot_id))

    def complete(self, volume_id: str, snapshot_id: str, size_bytes: int) -> SnapshotInfo:
        """Mark the snapshot's tree as finished by writing its metadata."""
        info = SnapshotInfo(
            volume_id, snapshot_id, self.path(volume_id, snapshot_id), size_bytes, time.time()
        )
        meta = self._meta(volume_id, snapshot_id)
        tmp = meta.with_name(f".{snapshot_id}.json.tmp")
        tmp.write_text(json.dumps({"size_bytes": size_bytes, "created_at": info.created_at}))
        tmp.rename(meta)
        return info

    def forget(self, volume_id: str, snapshot_id: str) -> None:
        """Unmark the snapshot (first step of deleting it)."""
        self.path(volume_id, snapshot_id)
        self._meta(volume_id, snapshot_id).unlink(missing_ok=True)

    def tidy(self, volume_id: str) -> None:
        """Remove the volume's snapshot directory once it holds nothing."""
        try:
            (self.base / volume_id).rmdir()
        except OSError:
            pass


class Cloning(Protocol):
    """What `prepare_clone` needs of a backend's snapshot operations."""

    name: str
    snapshots: SnapshotArea

    def get_volume(self, volume_id: str) -> VolumeInfo | None: ...
    def _require(self, volume_id: str) -> VolumeInfo: ...
    def _check_capacity(self, needed: int, what: str) -> None: ...


def prepare_clone(
    ops: Cloning,
    source_volume_id: str,
    new_volume_id: str,
    size_bytes: int,
    snapshot_id: str | None,
) -> VolumeInfo | Path:
    """The checks every backend's clone makes: the clone itself when it exists already (a
    repeated call), else the path to copy from (a volume or one of its snapshots), after
    checking the clone is at least as large and fits."""
    check_volume_id(ops.name, source_volume_id)
    existing = ops.get_volume(new_volume_id)
    if existing is not None:
        return existing
    origin: VolumeInfo | SnapshotInfo = (
        ops._require(source_volume_id)
        if snapshot_id is None
        else ops.snapshots.require(source_volume_id, snapshot_id)
    )
    what = (
        f"snapshot {origin.snapshot_id!r} of {origin.volume_id!r}"
        if isinstance(origin, SnapshotInfo)
        else repr(origin.volume_id)
    )
    if size_bytes < origin.size_bytes:
        raise InvalidVolume(
            f"backend {ops.name}: clone {new_volume_id!r} of {what} must be at least "
            f"{origin.size_bytes} bytes, {size_bytes} asked"
        )
    ops._check_capacity(size_bytes, f"clone {new_volume_id!r}")
    return origin.path
