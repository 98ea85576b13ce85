"""The bucket side of snapshots and backups, on a real S3 bucket: sealed documents, and
every way a bucket writer could change them refused before anything is restored."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from services.protection.bucket_catalog import (
    BackupCatalog,
    CatalogError,
    UnsealedBackup,
    VolumeEntry,
    read_backup,
    read_snapshot_resources,
    read_written_resources,
    write_catalog,
    write_resources,
    write_snapshot_resources,
)
from services.protection.snapshot import group_id_problem
from tests.support import sealed
from vessel.objectstore.minio_port import MinioStore
from vessel.sealed.documents import SealedStore
from vessel.sealed.keys import MasterKey

SECRET_VALUE = "hunter2-do-not-leak"
OBJECTS: list[dict[str, Any]] = [
    {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}},
    },
    {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "shop"},
        "data": {"password": base64.b64encode(SECRET_VALUE.encode()).decode()},
    },
]
LEGACY: dict[str, object] = {
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


def backup(sb: SealedStore, backup_id: str, namespace: str = "shop") -> BackupCatalog:
    """A complete backup as the backup flow writes one."""
    objects = [{**o, "metadata": {**o["metadata"], "namespace": namespace}} for o in OBJECTS]
    write_resources(sb, backup_id, objects)
    _, digest = read_written_resources(sb, backup_id)
    catalog = BackupCatalog(
        backup_id=backup_id,
        app_id=f"cluster-a.{namespace}.shop",
        cluster="cluster-a",
        namespace=namespace,
        namespaces=[namespace],
        created=datetime.now(UTC),
        completed=datetime.now(UTC),
        resources_digest=digest,
        volumes=[VolumeEntry(namespace=namespace, claim="data", snapshot_id="b" * 64, bytes=7)],
    )
    write_catalog(sb, catalog)
    return catalog


def test_a_backup_reads_back_verified(bucket: MinioStore) -> None:
    sb = sealed(bucket)
    written = backup(sb, "b-1")
    record, objects = read_backup(sb, "b-1")
    assert record == written
    assert objects == OBJECTS
    listing = json.loads(bucket.get_bytes("backups/b-1/backup.json"))
    assert listing["format"] == "vessel.backup/2"
    assert set(listing) >= {"backup_id", "app_id", "cluster", "namespaces", "volumes"}
    assert "resources_digest" not in listing and "snapshot_id" not in listing["volumes"][0]


def test_nothing_in_the_bucket_shows_a_secret_or_an_image(bucket: MinioStore) -> None:
    sb = sealed(bucket)
    write_snapshot_resources(sb, "snap-1", OBJECTS)
    backup(sb, "b-1")
    needles = [
        SECRET_VALUE.encode(),
        base64.b64encode(SECRET_VALUE.encode()),
        b"nginx:1",
        b"Deployment",
    ]
    keys = bucket.list("")
    assert {"snapshots/snap-1/resources.sealed", "backups/b-1/resources.sealed"} <= set(keys)
    for key in keys:
        data = bucket.get_bytes(key)
        assert not [n for n in needles if n in data], key


def test_a_snapshot_archive_is_sealed_again_for_its_backup(bucket: MinioStore) -> None:
    sb = sealed(bucket)
    key = write_snapshot_resources(sb, "snap-7", OBJECTS)
    assert key == "snapshots/snap-7/resources.sealed"
    assert read_snapshot_resources(sb, "snap-7", key) == OBJECTS
    write_resources(sb, "b-7", read_snapshot_resources(sb, "snap-7", key))
    assert bucket.get_bytes("backups/b-7/resources.sealed") != bucket.get_bytes(key)
    with pytest.raises(CatalogError, match="authentication failed"):
        read_snapshot_resources(sb, "snap-8", key)  # another snapshot's archive


def _flip_last_byte(bucket: MinioStore, key: str) -> None:
    data = bytearray(bucket.get_bytes(key))
    data[-1] ^= 1
    bucket.put_bytes(key, bytes(data))


def _copy(bucket: MinioStore, source: str, target: str) -> None:
    bucket.put_bytes(target, bucket.get_bytes(source))


def _listing(bucket: MinioStore, backup_id: str, **changes: object) -> None:
    key = f"backups/{backup_id}/backup.json"
    bucket.put_bytes(key, json.dumps({**json.loads(bucket.get_bytes(key)), **changes}).encode())


TAMPERING = {
    "modified record": (
        lambda b: _flip_last_byte(b, "backups/b-1/backup.sealed"),
        r"backups/b-1/backup\.sealed: authentication failed",
    ),
    "truncated record": (
        lambda b: b.put_bytes(
            "backups/b-1/backup.sealed", b.get_bytes("backups/b-1/backup.sealed")[:20]
        ),
        r"backups/b-1/backup\.sealed: (truncated|authentication failed)",
    ),
    "record of another backup": (
        lambda b: _copy(b, "backups/b-2/backup.sealed", "backups/b-1/backup.sealed"),
        r"backups/b-1/backup\.sealed: authentication failed",
    ),
    "modified resources": (
        lambda b: _flip_last_byte(b, "backups/b-1/resources.sealed"),
        r"backups/b-1/resources\.sealed: not the document its backup record names",
    ),
    "resources of another backup": (
        lambda b: _copy(b, "backups/b-2/resources.sealed", "backups/b-1/resources.sealed"),
        r"backups/b-1/resources\.sealed: not the document its backup record names",
    ),
    "listing moved to another namespace": (
        lambda b: _listing(b, "b-1", namespace="dev", namespaces=["dev"]),
        r"backups/b-1/backup\.json: namespace 'dev' disagrees with the sealed record \('shop'\)",
    ),
    "listing of another app": (
        lambda b: _listing(b, "b-1", app_id="cluster-a.dev.dev"),
        r"app_id 'cluster-a\.dev\.dev' disagrees with the sealed record",
    ),
    "listing of an unknown format": (
        lambda b: _listing(b, "b-1", format="vessel.backup/9"),
        r"backups/b-1/backup\.json: unknown format 'vessel\.backup/9'",
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_a_tampered_backup_is_refused_naming_the_object(bucket: MinioStore, case: str) -> None:
    sb = sealed(bucket)
    backup(sb, "b-1")
    backup(sb, "b-2", namespace="dev")
    tamper, message = TAMPERING[case]
    tamper(bucket)
    with pytest.raises(CatalogError, match=message):
        read_backup(sb, "b-1")


def test_resources_sealed_again_for_the_same_backup_are_refused(bucket: MinioStore) -> None:
    """A rollback by the key holder's own writes: a second, valid archive of the same
    backup is not the one its record names."""
    sb = sealed(bucket)
    backup(sb, "b-1")
    write_resources(sb, "b-1", [OBJECTS[0]])
    with pytest.raises(CatalogError, match="not the document its backup record names"):
        read_backup(sb, "b-1")


def test_another_key_opens_nothing(bucket: MinioStore) -> None:
    backup(sealed(bucket), "b-1")
    with pytest.raises(CatalogError, match="sealed with another key"):
        read_backup(SealedStore(bucket, MasterKey.generate()), "b-1")


def test_an_unsealed_backup_is_restored_only_when_trusted(bucket: MinioStore) -> None:
    sb = sealed(bucket)
    bucket.put_bytes("backups/b-old/backup.json", json.dumps(LEGACY).encode())
    archive = {"format": "vessel.resources/1", "items": OBJECTS}
    bucket.put_bytes("backups/b-old/resources.json", json.dumps(archive).encode())
    with pytest.raises(UnsealedBackup, match=r"b-old was written unsealed \(vessel\.backup/1\)"):
        read_backup(sb, "b-old")
    record, objects = read_backup(sb, "b-old", trust_unsealed=True)
    assert record.cluster == "cluster-a" and record.volumes[0].snapshot_id == "a" * 64
    assert record.snapshot_id is None and record.namespaces == []  # fields added later
    assert objects == OBJECTS


def test_fields_a_reader_does_not_know_are_ignored(bucket: MinioStore) -> None:
    """Fields added to vessel.backup/2 later stay readable by this reader."""
    sb = sealed(bucket)
    written = backup(sb, "b-new")
    record = {**written.model_dump(mode="json"), "field_from_the_future": True}
    sb.put("backups/b-new/backup.sealed", "backup", "b-new", record)
    key = "backups/b-new/backup.json"
    listing = {**json.loads(bucket.get_bytes(key)), "field_from_the_future": True}
    bucket.put_bytes(key, json.dumps(listing).encode())
    assert read_backup(sb, "b-new")[0] == written


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
