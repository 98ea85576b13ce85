"""The repository in a bucket with S3 Object Lock (SeaweedFS): what is locked, how long,
what prune and forget leave, and what someone holding the bucket's write keys cannot do."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.mover.repo.archiver import Archiver
from services.mover.repo.cli import recover_bucket
from services.mover.repo.errors import RepositoryMissing
from services.mover.repo.maintenance import forget, prune
from services.mover.repo.repository import Repository
from services.mover.repo.restorer import Restorer
from services.mover.repo.retention import cover
from tests.mover.repokit import PASSWORD, PREFIX, new_repository
from vessel.objectstore.base import Retain
from vessel.objectstore.lock import LockedStore, LockPolicy
from vessel.objectstore.minio_port import MinioStore
from vessel.sealed.providers.password import PasswordKey
from vessel_dev.rig.processes import S3Server


@dataclass(frozen=True)
class SecondsPolicy(LockPolicy):
    """Retentions of seconds, so a test sees them end."""

    seconds: float = 6.0

    def retain(self, now: datetime | None = None) -> Retain:
        return Retain(self.mode, (now or datetime.now(UTC)) + timedelta(seconds=self.seconds))

    @property
    def ahead(self) -> timedelta:
        return timedelta(seconds=self.seconds)


def locked_store(bucket: MinioStore, policy: LockPolicy) -> LockedStore:
    return LockedStore(bucket, policy, never=(f"{PREFIX}/locks/",))


def fill(source: Path, files: dict[str, int]) -> None:
    for name, size in files.items():
        path = source / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))


def same_tree(a: Path, b: Path) -> bool:
    names = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    return names == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file()) and all(
        (a / n).read_bytes() == (b / n).read_bytes() for n in names
    )


def pack_keys_of(repo: Repository, tree: str) -> set[str]:
    packs, stack = set(), [tree]
    while stack:
        tree_id = stack.pop()
        packs.add(repo.index[bytes.fromhex(tree_id)].pack)
        for node in repo.read_tree(tree_id).nodes:
            packs.update(repo.index[bytes.fromhex(c)].pack for c in node.content)
            stack.extend([node.subtree] if node.subtree else [])
    return {repo.pack_key(p) for p in packs}


def test_every_object_but_locks_is_locked_and_incrementals_extend_reused_packs(
    lock_bucket: MinioStore, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    fill(source, {"a.bin": 700_000, "dir/b.bin": 300_000, "dir/sub/c.bin": 90_000})
    repo = new_repository(locked_store(lock_bucket, LockPolicy("governance", 1)))
    first, _ = Archiver(repo).backup(source)
    keys = lock_bucket.list(f"{PREFIX}/")
    assert not [k for k in keys if "/locks/" in k]
    assert not [v for v in lock_bucket.versions(f"{PREFIX}/locks/")]  # released for good
    for key in keys:
        retain = lock_bucket.retention(key)
        assert retain is not None, key
        assert retain.until > datetime.now(UTC) + timedelta(days=1, hours=23), key

    # Another process, a longer setting: the new snapshot reuses the first one's packs.
    store = locked_store(lock_bucket, LockPolicy("governance", 5))
    later = Repository.open(store, PREFIX, PasswordKey(PASSWORD))
    fill(source, {"dir/new.bin": 50_000})
    second, doc = Archiver(later).backup(source, parent=first)
    snapshot_retain = lock_bucket.retention(f"{PREFIX}/snapshots/{second}")
    assert snapshot_retain is not None
    reused = pack_keys_of(later, doc.tree)
    assert len(reused) >= 2
    for key in reused:
        retain = lock_bucket.retention(key)
        assert retain is not None and retain.until >= snapshot_retain.until, key
    # Remembered: covering the same snapshot again asks the bucket for nothing more.
    assert cover(later, doc.tree, snapshot_retain) == 0


def test_forget_and_prune_skip_locked_objects_then_free_every_version(
    lock_bucket: MinioStore, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    fill(source, {"a.bin": 900_000, "b.bin": 200_000})
    repo = new_repository(locked_store(lock_bucket, SecondsPolicy("governance", 1, 6.0)))
    snapshot, _ = Archiver(repo).backup(source)
    locked = forget(repo, [snapshot])
    assert snapshot in locked and locked[snapshot] > datetime.now(UTC)
    assert lock_bucket.exists(f"{PREFIX}/snapshots/{snapshot}")
    assert prune(repo).deleted_packs == 0
    time.sleep(7)
    assert forget(repo, [snapshot]) == {}
    report = prune(repo)
    assert report.deleted_packs >= 1 and report.locked_packs == 0
    for kind in ("snapshots", "data", "index", "locks"):
        assert lock_bucket.versions(f"{PREFIX}/{kind}/") == [], kind


def test_prune_keeps_unreferenced_packs_while_locked(
    lock_bucket: MinioStore, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    fill(source, {"a.bin": 600_000})
    repo = new_repository(locked_store(lock_bucket, SecondsPolicy("governance", 1, 3.0)))
    snapshot, _ = Archiver(repo).backup(source)
    time.sleep(4)  # the snapshot's retention ended; its packs were written with it
    assert forget(repo, [snapshot]) == {}
    # A pack that is still locked (here: extended by hand) stays indexed, not deleted.
    pack = lock_bucket.list(f"{PREFIX}/data/")[0]
    lock_bucket.extend_retention(pack, Retain("governance", datetime.now(UTC) + timedelta(hours=1)))
    report = prune(repo)
    assert report.locked_packs == 1
    assert lock_bucket.exists(pack)
    assert pack.rsplit("/", 1)[1] in {loc.pack for loc in repo.index.values()}


def test_a_client_with_the_write_keys_cannot_destroy_a_locked_backup(
    lock_bucket: MinioStore, s3_server: S3Server, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    fill(source, {"a.bin": 800_000, "dir/b.bin": 120_000, "dir/c.txt": 10})
    repo = new_repository(locked_store(lock_bucket, LockPolicy("compliance", 1)))
    snapshot, _ = Archiver(repo).backup(source)
    # The attacker: same endpoint, bucket and keys, no repository password.
    attacker = MinioStore(
        s3_server.endpoint, lock_bucket.bucket, s3_server.access_key, s3_server.secret_key
    )
    keys = attacker.list("")
    for key in keys[:3]:
        attacker.put_bytes(key, b"garbage")
    for key in keys:
        attacker.delete(key)
    assert attacker.list("") == []
    with pytest.raises(RepositoryMissing):
        Repository.open(lock_bucket, PREFIX, PasswordKey(PASSWORD))

    report = recover_bucket(lock_bucket, PREFIX, PasswordKey(PASSWORD))
    assert sorted(report["restored"]) == keys  # type: ignore[type-var]
    assert report["unrecoverable"] == [] and report["left_deleted_key_files"] == []
    fresh = Repository.open(lock_bucket, PREFIX, PasswordKey(PASSWORD))
    target = tmp_path / "restored"
    Restorer(fresh).restore(snapshot, target)
    assert same_tree(source, target)
