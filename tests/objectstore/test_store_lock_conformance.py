"""Object lock in the `ObjectStore` contract: a store that locks enforces it, against a
real S3 service (SeaweedFS); a store that cannot lock says so and refuses to pretend."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from vessel.objectstore.base import (
    NULL_VERSION,
    LockUnsupported,
    ObjectLocked,
    ObjectNotFound,
    ObjectStore,
    Retain,
)
from vessel.objectstore.local import LocalStore
from vessel.objectstore.lock import LockedStore, LockPolicy, purge
from vessel.objectstore.minio_port import MinioStore


def soon(seconds: float) -> Retain:
    return Retain("governance", datetime.now(UTC) + timedelta(seconds=seconds))


class LockingConformance:
    """The contract of a store whose bucket enforces object lock."""

    @pytest.fixture
    def store(self) -> ObjectStore:
        raise NotImplementedError

    def test_says_it_locks_and_reports_the_retention(self, store: ObjectStore) -> None:
        assert store.locking()
        until = datetime.now(UTC) + timedelta(days=2)
        store.put_bytes("locked", b"v1", Retain("compliance", until))
        store.put_bytes("free", b"v1")
        retain = store.retention("locked")
        assert retain is not None and retain.mode == "compliance"
        assert abs((retain.until - until).total_seconds()) < 2
        assert store.retention("free") is None
        with pytest.raises(ObjectNotFound):
            store.retention("missing")

    def test_extending_never_shortens(self, store: ObjectStore) -> None:
        first = datetime.now(UTC) + timedelta(days=2)
        store.put_bytes("k", b"x", Retain("governance", first))
        store.extend_retention("k", Retain("governance", first - timedelta(days=1)))
        assert store.retention("k") == Retain("governance", first.replace(microsecond=0))
        store.extend_retention("k", Retain("governance", first + timedelta(days=3)))
        later = store.retention("k")
        assert later is not None and later.until > first + timedelta(days=2)

    def test_a_locked_version_survives_delete_and_overwrite(self, store: ObjectStore) -> None:
        store.put_bytes("k", b"original", soon(3600))
        store.put_bytes("k", b"overwritten")
        assert store.get_bytes("k") == b"overwritten"
        store.delete("k")
        assert store.list("") == []
        versions = store.versions("k")
        assert [v.delete_marker for v in versions] == [False, False, True]
        original = versions[0]
        with pytest.raises(ObjectLocked) as raised:
            store.delete_version("k", original.version_id)
        assert "k" in str(raised.value) and raised.value.until > datetime.now(UTC)
        for later in versions[1:]:
            store.delete_version("k", later.version_id)
        assert store.get_bytes("k") == b"original"

    def test_purge_refuses_locked_and_frees_expired(self, store: ObjectStore) -> None:
        store.put_bytes("short", b"x", soon(3))
        store.put_bytes("short", b"y")  # an unlocked later version goes first
        with pytest.raises(ObjectLocked):
            purge(store, "short")
        assert store.get_bytes("short") == b"x"
        time.sleep(4.5)
        purge(store, "short")
        assert store.versions("short") == []


class NotLockingConformance:
    """The contract of a store that cannot lock."""

    @pytest.fixture
    def store(self) -> ObjectStore:
        raise NotImplementedError

    def test_says_it_does_not_lock_and_refuses_retentions(
        self, store: ObjectStore, tmp_path: Path
    ) -> None:
        assert not store.locking()
        with pytest.raises(LockUnsupported):
            store.put_bytes("k", b"x", soon(60))
        (tmp_path / "f").write_bytes(b"x")
        with pytest.raises(LockUnsupported):
            store.put_file("k", tmp_path / "f", soon(60))
        with pytest.raises(LockUnsupported):
            store.ensure_bucket(object_lock=True)
        assert store.list("") == []

    def test_one_version_per_object_deleted_for_good(self, store: ObjectStore) -> None:
        store.put_bytes("a/1", b"x")
        store.put_bytes("a/1", b"y")
        store.put_bytes("b", b"z")
        versions = store.versions("a/")
        assert [(v.key, v.delete_marker) for v in versions] == [("a/1", False)]
        assert store.retention("a/1") is None
        store.delete_version("a/1", versions[0].version_id)
        purge(store, "b")
        assert store.list("") == [] and store.versions("") == []


class TestMinioLockedBucket(LockingConformance):
    @pytest.fixture
    def store(self, lock_bucket: MinioStore) -> ObjectStore:
        return lock_bucket

    def test_an_existing_bucket_without_lock_is_refused_clearly(self, bucket: MinioStore) -> None:
        with pytest.raises(LockUnsupported, match="exists without object lock"):
            bucket.ensure_bucket(object_lock=True)


class TestLockedStoreWrapper(LockingConformance):
    @pytest.fixture
    def store(self, lock_bucket: MinioStore) -> ObjectStore:
        # The shared tests write some keys without a retention: those stay unlocked here too.
        unlocked = ("repo/locks/", "free", "k", "short")
        return LockedStore(lock_bucket, LockPolicy("governance", 1), never=unlocked)

    def test_locks_every_write_but_the_repository_locks(self, store: ObjectStore) -> None:
        store.put_bytes("repo/data/ab/pack", b"x")
        store.put_bytes("repo/locks/l1", b"x")
        retain = store.retention("repo/data/ab/pack")
        assert retain is not None
        assert retain.until > datetime.now(UTC) + timedelta(days=1, hours=23)
        assert store.retention("repo/locks/l1") is None


class TestMinioUnlockedBucket(NotLockingConformance):
    @pytest.fixture
    def store(self, bucket: MinioStore) -> ObjectStore:
        return bucket


class TestLocalStore(NotLockingConformance):
    @pytest.fixture
    def store(self, tmp_path: Path) -> ObjectStore:
        return LocalStore(tmp_path / "bucket-root")

    def test_version_id_is_null(self, store: ObjectStore) -> None:
        store.put_bytes("k", b"x")
        assert store.versions("")[0].version_id == NULL_VERSION
