"""Protection's documents in a bucket with S3 Object Lock (SeaweedFS): a locked backup is
never deleted, not even half, and survives a client holding the bucket's write keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.protection.bucket_catalog import CatalogError, read_backup
from services.protection.deletion import BackupLocked, delete_backup_objects
from tests.protection.test_backup_catalog import backup
from vessel.objectstore.base import ObjectNotFound
from vessel.objectstore.lock import LockedStore, LockPolicy
from vessel.objectstore.minio_port import MinioStore
from vessel.objectstore.recovery import recover
from vessel.sealed.documents import SealedStore
from vessel.sealed.keys import MasterKey
from vessel_dev.rig.processes import S3Server


def locked_catalog(bucket: MinioStore) -> SealedStore:
    store = LockedStore(bucket, LockPolicy("governance", 2), never=("repository/locks/",))
    return SealedStore(store, MasterKey.generate())


def test_a_locked_backup_is_not_deleted_and_the_message_names_the_date(
    lock_bucket: MinioStore,
) -> None:
    sb = locked_catalog(lock_bucket)
    backup(sb, "b1")
    keys = lock_bucket.list("backups/")
    assert len(keys) == 3
    for key in keys:
        retain = lock_bucket.retention(key)
        assert retain is not None and retain.until > datetime.now(UTC) + timedelta(days=2)
    with pytest.raises(BackupLocked, match=r"locked \(object lock\) until 20\d\d-") as raised:
        delete_backup_objects(sb, "b1")
    assert "nothing was deleted" in str(raised.value)
    assert lock_bucket.list("backups/") == keys
    assert [v for v in lock_bucket.versions("backups/") if v.delete_marker] == []
    read_backup(sb, "b1")


def test_deletes_and_overwrites_by_the_write_keys_are_undone_by_recovery(
    lock_bucket: MinioStore, s3_server: S3Server
) -> None:
    sb = locked_catalog(lock_bucket)
    backup(sb, "b1")
    attacker = MinioStore(
        s3_server.endpoint, lock_bucket.bucket, s3_server.access_key, s3_server.secret_key
    )
    keys = attacker.list("")
    attacker.put_bytes("backups/b1/backup.sealed", b"forged")
    with pytest.raises(CatalogError):
        read_backup(sb, "b1")
    for key in keys:
        attacker.delete(key)
    with pytest.raises(ObjectNotFound):
        read_backup(sb, "b1")
    report = recover(lock_bucket, ["backups/", "repository/"], key_files="repository/keys/")
    assert sorted(report.restored) == keys and not report.unrecoverable
    catalog, objects = read_backup(sb, "b1")
    assert catalog.backup_id == "b1" and len(objects) == 2


def test_a_rotated_away_key_file_does_not_come_back(lock_bucket: MinioStore) -> None:
    store = LockedStore(lock_bucket, LockPolicy("governance", 1), never=())
    store.put_bytes("repository/keys/old", b"{}")
    store.put_bytes("repository/keys/new", b"{}")
    store.delete("repository/keys/old")  # what rotation leaves while the old file is locked
    report = recover(store, ["repository/"], key_files="repository/keys/")
    assert report.left_deleted_key_files == ["repository/keys/old"]
    assert store.list("repository/keys/") == ["repository/keys/new"]
    store.delete("repository/keys/new")  # no key file current: every one comes back, named
    report = recover(store, ["repository/"], key_files="repository/keys/")
    assert sorted(report.restored_key_files) == ["repository/keys/new", "repository/keys/old"]
