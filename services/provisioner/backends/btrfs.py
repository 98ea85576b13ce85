"""`btrfs` backend: one subvolume per volume, size enforced by a qgroup limit.

Uses the `btrfs` command (btrfs-progs): it is the supported interface to the kernel's
ioctls, and no maintained Python binding covers qgroups and send/receive.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from services.provisioner.backends.base import (
    VOLUME_ID,
    BackendError,
    BackendUnavailable,
    InsufficientCapacity,
    VolumeInfo,
    check_volume_id,
)


def _btrfs(*args: str | Path) -> str:
    try:
        done = subprocess.run(
            ["btrfs", *map(str, args)], capture_output=True, text=True, check=False
        )
    except FileNotFoundError as exc:
        raise BackendUnavailable("btrfs-progs is not installed") from exc
    if done.returncode != 0:
        raise BackendError(f"btrfs {' '.join(map(str, args))}: {done.stderr.strip()}")
    return done.stdout


def is_btrfs(path: Path) -> bool:
    return (
        subprocess.run(
            ["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True, check=False
        ).stdout.strip()
        == "btrfs"
    )


class BtrfsBackend:
    type = "btrfs"
    capabilities = frozenset({"enforces_size", "snapshots", "clones"})

    def __init__(self, name: str, root: Path, capacity_bytes: int | None = None) -> None:
        self.name = name
        self.root = root
        self.capacity_bytes = capacity_bytes
        if not root.is_dir() or not is_btrfs(root):
            raise BackendUnavailable(f"backend {name}: {root} is not a mounted btrfs filesystem")
        _btrfs("quota", "enable", root)

    def _limit(self, path: Path) -> int | None:
        for line in _btrfs("qgroup", "show", "-re", "--raw", "-f", path).splitlines():
            fields = line.split()
            if fields and fields[0].startswith("0/"):
                return int(fields[3]) if fields[3].isdigit() else None
        return None

    def free_bytes(self) -> int:
        free = 0
        for line in _btrfs("filesystem", "usage", "-b", self.root).splitlines():
            if "Free (estimated)" in line:
                free = int(line.split(":")[1].split()[0])
        if self.capacity_bytes is not None:
            allocated = sum(v.size_bytes for v in self._volumes())
            free = min(free, max(0, self.capacity_bytes - allocated))
        return free

    def _volumes(self) -> list[VolumeInfo]:
        found = []
        for child in self.root.iterdir():
            if VOLUME_ID.match(child.name) and child.is_dir():  # foreign directories are not ours
                info = self.get_volume(child.name)
                if info is not None:
                    found.append(info)
        return found

    def get_volume(self, volume_id: str) -> VolumeInfo | None:
        path = self.root / check_volume_id(self.name, volume_id)
        if not path.is_dir():
            return None
        limit = self._limit(path)
        return VolumeInfo(volume_id, path, limit or 0)

    def create_volume(self, volume_id: str, size_bytes: int) -> VolumeInfo:
        existing = self.get_volume(volume_id)
        if existing is not None:
            return existing
        free = self.free_bytes()
        if size_bytes > free:
            raise InsufficientCapacity(
                f"backend {self.name}: {size_bytes} bytes requested, {free} free"
            )
        staging = self.root / f".creating-{volume_id}"
        if staging.exists():
            _btrfs("subvolume", "delete", staging)
        _btrfs("subvolume", "create", staging)
        _btrfs("qgroup", "limit", str(size_bytes), staging)
        staging.chmod(0o777)
        # Rename last: a subvolume under its final name always has its limit.
        staging.rename(self.root / volume_id)
        return VolumeInfo(volume_id, self.root / volume_id, size_bytes)

    def delete_volume(self, volume_id: str) -> None:
        path = self.root / check_volume_id(self.name, volume_id)
        if path.exists():
            _btrfs("subvolume", "delete", path)
