"""`dir` backend: one directory per volume on any filesystem; size accounted, not enforced.

The requested size is recorded in a `.size` file beside the volume directory, so the
accounting survives restarts without a database. Snapshots, clones and reverts are copies
(`dirfs_snapshots`), sharing data blocks when the filesystem can reflink.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from services.provisioner.adapters.base import (
    BackendUnavailable,
    InsufficientCapacity,
    InvalidVolume,
    NotFound,
    VolumeExists,
    VolumeInfo,
    VolumeUsage,
    check_volume_id,
)
from services.provisioner.adapters.dirfs_snapshots import DirSnapshotOps
from services.provisioner.adapters.fsops import import_candidate, reflink_works, tree_usage
from services.provisioner.adapters.snapshot_area import SnapshotArea


class DirBackend(DirSnapshotOps):
    type = "dir"

    def __init__(self, name: str, root: Path, capacity_bytes: int | None = None) -> None:
        self.name = name
        self.root = root
        self.capacity_bytes = capacity_bytes
        self.who = f"backend {name}"
        if not root.is_dir():
            raise BackendUnavailable(f"backend {name}: {root} is not a directory")
        self.snapshots = SnapshotArea(self.who, root)
        self.reflink = reflink_works(root)
        base = {"expand", "snapshots", "clones", "revert", "import"}
        self.capabilities = frozenset(base | ({"reflink"} if self.reflink else set()))

    def _allocated(self) -> int:
        return sum(int(p.read_text()) for p in self.root.glob("*.size"))

    def free_bytes(self) -> int:
        disk_free = shutil.disk_usage(self.root).free
        if self.capacity_bytes is None:
            return disk_free
        return max(0, min(disk_free, self.capacity_bytes - self._allocated()))

    def _check_capacity(self, needed: int, what: str) -> None:
        free = self.free_bytes()
        if needed > free:
            raise InsufficientCapacity(
                f"backend {self.name}: {what} needs {needed} bytes, {free} free"
            )

    def get_volume(self, volume_id: str) -> VolumeInfo | None:
        check_volume_id(self.name, volume_id)
        size_file = self.root / f"{volume_id}.size"
        path = self.root / volume_id
        if not (size_file.exists() and path.is_dir()):
            return None
        return VolumeInfo(volume_id, path, int(size_file.read_text()))

    def _require(self, volume_id: str) -> VolumeInfo:
        info = self.get_volume(volume_id)
        if info is None:
            raise NotFound(f"backend {self.name}: no volume {volume_id!r}")
        return info

    def _write_size(self, volume_id: str, size_bytes: int) -> None:
        tmp = self.root / f".{volume_id}.size.tmp"
        tmp.write_text(str(size_bytes))
        tmp.rename(self.root / f"{volume_id}.size")

    def _staging(self, volume_id: str) -> Path:
        """`.creating-<id>`, removed if an interrupted create or clone left it."""
        staging = self.root / f".creating-{volume_id}"
        shutil.rmtree(staging, ignore_errors=True)
        return staging

    def _finish(self, volume_id: str, staging: Path, size_bytes: int) -> VolumeInfo:
        staging.chmod(0o777)  # any pod user may write, like a fresh filesystem root
        # Without its size file the directory was never handed out: an interrupted create.
        shutil.rmtree(self.root / volume_id, ignore_errors=True)
        staging.rename(self.root / volume_id)
        # The size file is written last: it marks the volume as complete.
        self._write_size(volume_id, size_bytes)
        return VolumeInfo(volume_id, self.root / volume_id, size_bytes)

    def create_volume(self, volume_id: str, size_bytes: int) -> VolumeInfo:
        existing = self.get_volume(volume_id)
        if existing is not None:
            return existing
        self._check_capacity(size_bytes, f"volume {volume_id!r}")
        staging = self._staging(volume_id)
        staging.mkdir(mode=0o777)
        return self._finish(volume_id, staging, size_bytes)

    def delete_volume(self, volume_id: str) -> None:
        check_volume_id(self.name, volume_id)
        (self.root / f"{volume_id}.size").unlink(missing_ok=True)
        shutil.rmtree(self.root / volume_id, ignore_errors=True)

    def expand_volume(self, volume_id: str, new_size_bytes: int) -> VolumeInfo:
        info = self._require(volume_id)
        if new_size_bytes < info.size_bytes:
            raise InvalidVolume(
                f"backend {self.name}: volume {volume_id!r} is {info.size_bytes} bytes; "
                f"shrinking it to {new_size_bytes} bytes is not supported"
            )
        if new_size_bytes == info.size_bytes:
            return info
        self._check_capacity(new_size_bytes - info.size_bytes, f"expanding {volume_id!r}")
        self._write_size(volume_id, new_size_bytes)
        return VolumeInfo(volume_id, info.path, new_size_bytes)

    def usage(self, volume_id: str) -> VolumeUsage:
        info = self._require(volume_id)
        return VolumeUsage(tree_usage(info.path), info.size_bytes)

    def import_volume(
        self, volume_id: str, existing_path: Path, size_bytes: int | None = None
    ) -> VolumeInfo:
        if self.get_volume(volume_id) is not None:
            raise VolumeExists(f"backend {self.name}: volume {volume_id!r} already exists")
        source = self._importable(existing_path)
        used = tree_usage(source)
        size = used if size_bytes is None else size_bytes
        if size < used:
            raise InvalidVolume(
                f"backend {self.name}: {existing_path} holds {used} bytes, more than the "
                f"{size} bytes asked for volume {volume_id!r}"
            )
        if self.capacity_bytes is not None and size > self.capacity_bytes - self._allocated():
            raise InsufficientCapacity(
                f"backend {self.name}: importing {existing_path} as {volume_id!r} needs "
                f"{size} bytes, {max(0, self.capacity_bytes - self._allocated())} free"
            )
        target = self.root / volume_id
        if source == target.resolve():  # already in place, only its size file missing
            self._write_size(volume_id, size)
            return VolumeInfo(volume_id, target, size)
        shutil.rmtree(target, ignore_errors=True)  # no size file: an interrupted create
        # Size file first, rename last: the volume appears complete, and an interrupted
        # import leaves the data where it was (the retry rewrites the size file).
        self._write_size(volume_id, size)
        try:
            source.rename(target)
        except OSError as exc:
            (self.root / f"{volume_id}.size").unlink(missing_ok=True)
            raise InvalidVolume(
                f"backend {self.name}: cannot move {existing_path} into place as volume "
                f"{volume_id!r}: {exc.strerror}"
            ) from exc
        return VolumeInfo(volume_id, target, size)

    def _importable(self, existing_path: Path) -> Path:
        """`existing_path` if it is a directory on the root's filesystem, not ours yet."""

        source = import_candidate(
            self.name, self.root, existing_path, lambda name: (self.root / f"{name}.size").exists()
        )
        if os.stat(source).st_dev != os.stat(self.root).st_dev:
            raise InvalidVolume(
                f"backend {self.name}: cannot import {existing_path}: "
                f"not on the filesystem of {self.root}"
            )
        return source
