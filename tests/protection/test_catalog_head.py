"""The catalog head on a real S3 bucket: it lists the complete backups, counts every
change, and a restore is refused when the head is rolled back, missing or forged."""

from __future__ import annotations

import pytest

from services.protection.bucket_catalog import CatalogError
from services.protection.catalog_head import change_head, check_head, read_head
from tests.protection.test_backup_catalog import backup
from tests.support import sealed
from vessel.contracts.state import CATALOG_HEAD_KEY
from vessel.objectstore.lock import LockPolicy, locked
from vessel.objectstore.minio_port import MinioStore
from vessel.sealed.documents import SealedStore
from vessel.sealed.keys import MasterKey


def test_the_head_lists_complete_backups_and_counts_changes(bucket: MinioStore) -> None:
    sb = sealed(bucket)
    assert check_head(sb, "b-1", 0) == 0  # no head and none seen: nothing to compare
    backup(sb, "b-0")  # completed before the bucket had a head
    assert change_head(sb, add="b-1") == 1
    head = read_head(sb)
    assert head is not None and head.backups == ["b-0", "b-1"]
    assert change_head(sb, add="b-1") == 1  # nothing changed: no new head
    assert change_head(sb, remove="b-0") == 2
    assert check_head(sb, "b-1", 2) == 2
    with pytest.raises(CatalogError, match=r"backup b-0 is not in the catalog \(head 2\)"):
        check_head(sb, "b-0", 2)


def test_a_rolled_back_or_missing_head_is_refused(bucket: MinioStore) -> None:
    sb = sealed(bucket)
    change_head(sb, add="b-1")
    first = bucket.get_bytes(CATALOG_HEAD_KEY)
    change_head(sb, add="b-2")
    bucket.put_bytes(CATALOG_HEAD_KEY, first)
    with pytest.raises(CatalogError, match=r"catalog head 1 is older than head 2"):
        check_head(sb, "b-1", 2)
    bucket.delete(CATALOG_HEAD_KEY)
    with pytest.raises(CatalogError, match=r"missing, though this Vessel saw catalog head 2"):
        check_head(sb, "b-1", 2)
    bucket.put_bytes(CATALOG_HEAD_KEY, first)
    assert check_head(sb, "b-1", 0) == 1  # a fresh install trusts the head it first reads


def test_a_forged_head_is_refused(bucket: MinioStore) -> None:
    sb = sealed(bucket)
    change_head(sb, add="b-1")
    data = bytearray(bucket.get_bytes(CATALOG_HEAD_KEY))
    data[-1] ^= 1
    bucket.put_bytes(CATALOG_HEAD_KEY, bytes(data))
    with pytest.raises(CatalogError, match=r"catalog/head\.sealed: authentication failed"):
        check_head(sb, "b-1", 1)


def test_under_object_lock_the_head_stays_unlocked(lock_bucket: MinioStore) -> None:
    """Backup documents are locked; the head, rewritten by every change, is not."""
    store = locked(lock_bucket, LockPolicy("governance", 1), "repository")
    sb = SealedStore(store, MasterKey.generate())
    backup(sb, "b-1")
    assert change_head(sb, add="b-1") == 1 and change_head(sb, add="b-2") == 2
    assert lock_bucket.retention(CATALOG_HEAD_KEY) is None
    assert lock_bucket.retention("backups/b-1/backup.sealed") is not None
