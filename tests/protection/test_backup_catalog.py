"""The bucket side of snapshots and backups, on a real S3 bucket: snapshot archives under
`snapshots/`, copied into a backup's prefix, and catalogs old and new both readable."""

from __future__ import annotations

import json

import pytest

from services.protection.bucket_catalog import (
    CatalogError,
    copy_resources,
    read_archive,
    read_catalog,
    read_resources,
    write_snapshot_resources,
)
from services.protection.snapshot import group_id_problem
from vessel.objectstore.minio_port import MinioStore

OLD_CATALOG: dict[str, object] = {
    "format": "vessel.backup/1",
    "backup_id": "b-old",
    "app_id": "cluster-a.shop.shop",
    "cluster": "cluster-a",
    "namespace": "shop",
    "created": "2026-01-01T00:00:00Z",
    "completed": "2026-01-01T00:01:00Z",
    "resources_key": "backups/b-old/resources.json",
    "volumes": [{"namespace": "shop", "claim": "data", "snapshot_id": "a" * 64, "bytes": 5}],
}


def test_a_snapshot_archive_is_copied_byte_for_byte_into_a_backup(bucket: MinioStore) -> None:
    objects = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}]
    key = write_snapshot_resources(bucket, "snap-7", objects)
    assert key == "snapshots/snap-7/resources.json"
    archive = read_archive(bucket, key)
    copied = copy_resources(bucket, "b-7", archive)
    assert copied == "backups/b-7/resources.json"
    assert bucket.get_bytes(copied) == bucket.get_bytes(key)
    assert read_resources(bucket, copied) == objects


def test_copying_refuses_what_is_not_a_resource_archive(bucket: MinioStore) -> None:
    bucket.put_bytes("snapshots/bad/resources.json", b'{"format": "other/1", "items": []}')
    with pytest.raises(CatalogError, match=r"snapshots/bad/resources\.json: not a Vessel"):
        read_archive(bucket, "snapshots/bad/resources.json")


def test_catalogs_without_and_with_the_snapshot_fields_are_read(bucket: MinioStore) -> None:
    bucket.put_bytes("backups/b-old/backup.json", json.dumps(OLD_CATALOG).encode())
    old = read_catalog(bucket, "b-old")
    assert old.snapshot_id is None and old.namespaces == []
    newer = {**OLD_CATALOG, "backup_id": "b-new", "snapshot_id": "s1", "namespaces": ["shop"]}
    newer["field_from_the_future"] = True
    bucket.put_bytes("backups/b-new/backup.json", json.dumps(newer).encode())
    new = read_catalog(bucket, "b-new")
    assert new.snapshot_id == "s1" and new.namespaces == ["shop"]


@pytest.mark.parametrize(
    ("snapshot_id", "ok"),
    [("backup-e2e", True), ("s.1_a", True), ("x" * 63, True), ("x" * 64, False), ("ends-", False)],
)
def test_a_snapshot_id_must_be_able_to_label_its_volume_snapshots(
    snapshot_id: str, ok: bool
) -> None:
    problem = group_id_problem(snapshot_id)
    assert (problem == "") is ok
    if not ok:
        assert repr(snapshot_id) in problem and "vessel.io/group" in problem
