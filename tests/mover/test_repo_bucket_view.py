"""What someone who reads the bucket learns of a repository: no names, no content, and
not whether it holds a given well-known file."""

from __future__ import annotations

from pathlib import Path

from services.mover.repo.archiver import Archiver
from tests.mover.repokit import new_repository
from vessel.objectstore.minio_port import MinioStore


def test_names_and_content_never_reach_the_bucket(bucket: MinioStore, tmp_path: Path) -> None:
    repo = new_repository(bucket)
    source = tmp_path / "source"
    (source / "quarterly-payroll").mkdir(parents=True)
    secret = b"ACCOUNT 4711 BALANCE 1000000 " * 4096
    (source / "quarterly-payroll" / "salaries-2026.csv").write_bytes(secret)
    Archiver(repo).backup(source)
    needles = [b"quarterly-payroll", b"salaries-2026", b"ACCOUNT 4711"]
    keys = bucket.list("")
    assert any(k.startswith("repository/data/") for k in keys)
    for key in keys:
        data = bucket.get_bytes(key)
        assert not [n for n in needles if n in data], key


def test_blob_ids_are_keyed_per_repository(bucket: MinioStore) -> None:
    """The same well-known content has different ids in two repositories, so an id seen in
    one bucket cannot be matched against a list of known files' hashes."""
    one = new_repository(bucket, "one")
    two = new_repository(bucket, "two")
    content = b"a well-known file" * 1000
    assert one.key.blob_id(content) != two.key.blob_id(content)
