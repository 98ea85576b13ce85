"""`dir` backend: one directory per volume on any filesystem; size accounted, not enforced.

The requested size is recorded in a `.size` file beside the volume directory, so the
accounting survives restarts without a database.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from services.provisioner.backends.base import (
    BackendUnavailable,
    InsufficientCapacity,
    VolumeInfo,
    check_volume_id,
)


class DirBackend:
    type = "dir"
    capabilities = frozenset({"clones"})

    def __init__(self, name: str, root: Path, capacity_bytes: int | None = None) -> None:
        self.name = name
        self.root = root
        self.capacity_bytes = capacity_bytes
        if not root.is_dir():
            raise BackendUnavailable(f"backend {name}: {root} is not a directory")

    def _allocated(self) -> int:
        return sum(int(p.read_text()) for p in self.root.glob("*.size"))

    def free_bytes(self) -> int:
        disk_free = shutil.disk_usage(self.root).free
        if self.capacity_bytes is None:
            return disk_free
        return max(0, min(disk_free, self.capacity_bytes - self._allocated()))

    def get_volume(self, volume_id: str) -> VolumeInfo | None:
        check_volume_id(self.name, volume_id)
        size_file = self.root / f"{volume_id}.size"
        path = self.root / volume_id
        if not (size_file.exists() and path.is_dir()):
            return None
        return VolumeInfo(volume_id, path, int(size_file.read_text()))

    def create_volume(self, volume_id: str, size_bytes: int) -> VolumeInfo:
        existing = self.get_volume(volume_id)
        if existing is not None:
            return existing
        if size_bytes > self.free_bytes():
            raise InsufficientCapacity(
                f"backend {self.name}: {size_bytes} bytes requested, {self.free_bytes()} free"
            )
        staging = self.root / f".creating-{volume_id}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o777)
        staging.chmod(0o777)  # any pod user may write, like a fresh filesystem root
        # Without its size file the directory was never handed out: an interrupted create.
        shutil.rmtree(self.root / volume_id, ignore_errors=True)
        staging.rename(self.root / volume_id)
        # The size file is written last: it marks the volume as complete.
        tmp = self.root / f".{volume_id}.size.tmp"
        tmp.write_text(str(size_bytes))
        tmp.rename(self.root / f"{volume_id}.size")
        return VolumeInfo(volume_id, self.root / volume_id, size_bytes)

    def delete_volume(self, volume_id: str) -> None:
        check_volume_id(self.name, volume_id)
        (self.root / f"{volume_id}.size").unlink(missing_ok=True)
        shutil.rmtree(self.root / volume_id, ignore_errors=True)
