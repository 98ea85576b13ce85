"""`btrfs` backend: one subvolume per volume, size enforced by a qgroup limit.

Uses the `btrfs` command (btrfs-progs, see `btrfs_cli`): it is the supported interface to
the kernel's ioctls, and no maintained Python binding covers qgroups and send/receive.
Snapshots, clones, revert and send/receive live in `btrfs_snapshots`.
"""

from __future__ import annotations

from pathlib import Path

from services.provisioner.adapters import btrfs_cli as cli
from services.provisioner.adapters.base import (
    VOLUME_ID,
    BackendUnavailable,
    InsufficientCapacity,
    InvalidVolume,
    NotFound,
    VolumeExists,
    VolumeInfo,
    VolumeUsage,
    check_volume_id,
)
from services.provisioner.adapters.btrfs_cli import is_btrfs
from services.provisioner.adapters.btrfs_snapshots import BtrfsSnapshotOps
from services.provisioner.adapters.fsops import import_candidate
from services.provisioner.adapters.snapshot_area import SnapshotArea

__all__ = ["BtrfsBackend", "is_btrfs"]


class BtrfsBackend(BtrfsSnapshotOps):
    type = "btrfs"
    capabilities = frozenset(
        {
            "enforces_size",
            "expand",
            "snapshots",
            "clones",
            "instant_clones",
            "revert",
            "import",
            "send_receive",
            "compression",
        }
    )

    def __init__(self, name: str, root: Path, capacity_bytes: int | None = None) -> None:
        self.name = name
        self.root = root
        self.capacity_bytes = capacity_bytes
        self.who = f"backend {name}"
        if not root.is_dir() or not is_btrfs(root):
            raise BackendUnavailable(f"backend {name}: {root} is not a mounted btrfs filesystem")
        self.snapshots = SnapshotArea(self.who, root)
        cli.btrfs(self.who, "quota", "enable", root)

    def _accounted_free(self) -> int | None:
        if self.capacity_bytes is None:
            return None
        return max(0, self.capacity_bytes - sum(v.size_bytes for v in self._volumes()))

    def free_bytes(self) -> int:
        free = 0
        for line in cli.btrfs(self.who, "filesystem", "usage", "-b", self.root).splitlines():
            if "Free (estimated)" in line:
                free = int(line.split(":")[1].split()[0])
        accounted = self._accounted_free()
        return free if accounted is None else min(free, accounted)

    def _check_capacity(self, needed: int, what: str) -> None:
        free = self.free_bytes()
        if needed > free:
            raise InsufficientCapacity(
                f"backend {self.name}: {what} needs {needed} bytes, {free} free"
            )

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
        group = cli.qgroup(self.who, path)
        return VolumeInfo(volume_id, path, (group.limit if group else None) or 0)

    def _require(self, volume_id: str) -> VolumeInfo:
        info = self.get_volume(volume_id)
        if info is None:
            raise NotFound(f"backend {self.name}: no volume {volume_id!r}")
        return info

    def create_volume(self, volume_id: str, size_bytes: int) -> VolumeInfo:
        existing = self.get_volume(volume_id)
        if existing is not None:
            return existing
        self._check_capacity(size_bytes, f"volume {volume_id!r}")
        staging = self._staging(volume_id)
        cli.btrfs(self.who, "subvolume", "create", staging)
        cli.set_limit(self.who, staging, size_bytes)
        staging.chmod(0o777)
        # Rename last: a subvolume under its final name always has its limit.
        staging.rename(self.root / volume_id)
        return VolumeInfo(volume_id, self.root / volume_id, size_bytes)

    def compress_volume(self, volume_id: str) -> None:
        info = self._require(volume_id)
        cli.btrfs(self.who, "property", "set", info.path, "compression", "zstd")

    def _staging(self, volume_id: str) -> Path:
        """`.creating-<id>`, emptied of what an interrupted create or clone left."""
        staging = self.root / f".creating-{volume_id}"
        if staging.exists():
            cli.delete_subvolume(self.who, staging)
        return staging

    def delete_volume(self, volume_id: str) -> None:
        path = self.root / check_volume_id(self.name, volume_id)
        if path.exists():
            cli.delete_subvolume(self.who, path)

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
        cli.set_limit(self.who, info.path, new_size_bytes)
        return VolumeInfo(volume_id, info.path, new_size_bytes)

    def usage(self, volume_id: str) -> VolumeUsage:
        info = self._require(volume_id)
        cli.sync(self.who, self.root)
        group = cli.qgroup(self.who, info.path)
        return VolumeUsage(group.referenced if group else 0, info.size_bytes)

    def import_volume(
        self, volume_id: str, existing_path: Path, size_bytes: int | None = None
    ) -> VolumeInfo:
        if self.get_volume(volume_id) is not None:
            raise VolumeExists(f"backend {self.name}: volume {volume_id!r} already exists")
        source = self._importable(existing_path)
        cli.sync(self.who, self.root)
        group = cli.qgroup(self.who, source)
        used = group.referenced if group else 0
        size = size_bytes if size_bytes is not None else (group.limit if group else None) or used
        if size < used:
            raise InvalidVolume(
                f"backend {self.name}: {existing_path} holds {used} bytes, more than the "
                f"{size} bytes asked for volume {volume_id!r}"
            )
        accounted = self._accounted_free()
        if accounted is not None and size > accounted:
            raise InsufficientCapacity(
                f"backend {self.name}: importing {existing_path} as {volume_id!r} needs "
                f"{size} bytes, {accounted} free"
            )
        if group is None or group.limit != size:
            cli.set_limit(self.who, source, size)
        try:
            source.rename(self.root / volume_id)  # last: the volume appears complete
        except OSError as exc:
            raise InvalidVolume(
                f"backend {self.name}: cannot move {existing_path} into place as volume "
                f"{volume_id!r}: {exc.strerror}"
            ) from exc
        return VolumeInfo(volume_id, self.root / volume_id, size)

    def _importable(self, existing_path: Path) -> Path:
        """`existing_path` if it is a writable subvolume of this filesystem, not ours yet."""

        def refuse(why: str) -> InvalidVolume:
            return InvalidVolume(f"backend {self.name}: cannot import {existing_path}: {why}")

        source = import_candidate(
            self.name, self.root, existing_path, lambda name: bool(VOLUME_ID.match(name))
        )
        subvolume_uuid = cli.subvolume_field(self.who, source, "UUID")
        if subvolume_uuid is None:
            raise refuse("not a btrfs subvolume")
        if subvolume_uuid not in cli.subvolume_uuids(self.who, self.root):
            raise refuse(f"not on the filesystem of {self.root}")
        if cli.is_read_only(self.who, source):
            raise refuse("the subvolume is read-only")
        return source
