"""The mover's data path: `VolumeData` backs a volume up into a bucket's repository and
restores it, behind a small protocol so the transfer handlers never see the format.

Contract of `VolumeData`:
- `backup(source, parent, tags, progress)` returns the snapshot id; the snapshot exists
  only after every blob it references is stored. Repeating it is safe: blobs already in
  the repository (also from an interrupted attempt) are not uploaded again.
- `restore(snapshot_id, target, progress, paths, into, verify)` writes the tree (or only the
  entries `paths` name, under `target`/`into`) into `target`, verifying every chunk, never
  writing outside `target`; with `verify`, it then reads the whole target back against
  the snapshot's tree (`RestoreDiffers` names what differs).
- Errors: `RepositoryError` subclasses (permanent: wrong password, key source unavailable,
  corruption, unknown format, unsafe tree) and object-store errors (`StoreUnavailable` is
  temporary).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from services.mover.repo import locks
from services.mover.repo.archiver import Archiver
from services.mover.repo.btrfs_changes import ChangeTrackingUnavailable, changed_paths
from services.mover.repo.copy import CopyStats, copy_snapshot
from services.mover.repo.errors import RepositoryMissing
from services.mover.repo.format import SnapshotDoc
from services.mover.repo.progress import Progress, reporting
from services.mover.repo.repository import Repository
from services.mover.repo.restorer import Restorer, Stats
from services.mover.repo.verify import verify_restored
from vessel.objectstore.base import ObjectStore
from vessel.sealed.keys import KeyProvider

ProgressFn = Callable[[Progress], None]
log = logging.getLogger("vessel.mover")


class VolumeData(Protocol):
    def backup(
        self,
        source: Path,
        parent: str | None,
        tags: dict[str, str],
        progress: ProgressFn | None,
        parent_source: Path | None = None,
    ) -> tuple[str, SnapshotDoc]: ...

    def restore(
        self,
        snapshot_id: str,
        target: Path,
        progress: ProgressFn | None,
        paths: Sequence[str] = (),
        into: str = "",
        verify: bool = False,
    ) -> Stats: ...


class RepositoryData:
    """`VolumeData` on a `vessel.repo/1` repository, created on first use."""

    def __init__(
        self,
        store: ObjectStore,
        prefix: str,
        key: KeyProvider,
        like: RepositoryData | None = None,
    ) -> None:
        self.store = store
        self.prefix = prefix
        self.key = key
        self.like = like
        self._repo: Repository | None = None
        self._lock = threading.Lock()

    def repository(self) -> Repository:
        with self._lock:
            if self._repo is None:
                try:
                    self._repo = Repository.open(self.store, self.prefix, self.key)
                    if gone := locks.clear_previous(self._repo):
                        log.info("removed %d locks of this mover's previous run", len(gone))
                except RepositoryMissing:
                    self.store.ensure_bucket()
                    like = self.like.repository() if self.like is not None else None
                    self._repo = Repository.init(self.store, self.prefix, self.key, like=like)
            return self._repo

    def backup(
        self,
        source: Path,
        parent: str | None,
        tags: dict[str, str],
        progress: ProgressFn | None,
        parent_source: Path | None = None,
    ) -> tuple[str, SnapshotDoc]:
        repo = self.repository()
        if parent is not None and not repo.store.exists(repo.path("snapshots", parent)):
            parent = None  # the parent was pruned: a full backup is still correct
        changed = None
        if parent is not None and parent_source is not None:
            try:
                changed = changed_paths(parent_source, source)
            except ChangeTrackingUnavailable as exc:
                log.info("no btrfs change tracking, comparing metadata instead: %s", exc)
        return Archiver(repo, progress=progress).backup(
            source, parent=parent, tags=tags, changed=changed
        )

    def restore(
        self,
        snapshot_id: str,
        target: Path,
        progress: ProgressFn | None,
        paths: Sequence[str] = (),
        into: str = "",
        verify: bool = False,
    ) -> Stats:
        repo = self.repository()
        stats = Restorer(repo, progress=progress).restore(snapshot_id, target, paths, into)
        if verify and not paths:
            read_back = Progress()
            with reporting(read_back, progress):
                verify_restored(repo, snapshot_id, target, read_back)
        return stats

    def copy_to(self, target: RepositoryData, snapshot_id: str) -> tuple[str, CopyStats]:
        """Copy a snapshot into `target`, moving only the blobs it lacks."""
        return copy_snapshot(self.repository(), target.repository(), snapshot_id)
