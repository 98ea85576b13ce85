"""`SimpleRepository`: backup and restore of file trees through a real S3 bucket."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from services.mover.repository import CorruptData, SimpleRepository, UnsafePath
from vessel.objectstore.base import ObjectNotFound
from vessel.objectstore.minio_port import MinioStore

PREFIX = "apps/shop/b1"
Snapshot = dict[str, tuple[Any, ...]]


def make_tree(root: Path) -> None:
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "empty-dir").mkdir()
    (root / "empty.txt").write_bytes(b"")
    (root / "a" / "big.bin").write_bytes(os.urandom(3 << 20))
    (root / "a" / "b" / "c" / "deep.txt").write_text("deep\n")
    (root / "a" / "b" / "copy-1.txt").write_text("same content\n")
    (root / "copy-2.txt").write_text("same content\n")
    secret = root / "a" / "secret.key"
    secret.write_text("hunter2")
    secret.chmod(0o600)
    (root / "a" / "b" / "c").chmod(0o750)
    (root / "a" / "link").symlink_to("b/c/deep.txt")


def snapshot(root: Path) -> Snapshot:
    """Every entry under `root`: type, permission bits and content or link target."""
    found: Snapshot = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            rel = path.relative_to(root).as_posix()
            if stat.S_ISLNK(st.st_mode):
                found[rel] = ("symlink", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                found[rel] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                found[rel] = ("file", stat.S_IMODE(st.st_mode), path.read_bytes())
    return found


def put_manifest(bucket: MinioStore, entries: list[dict[str, Any]]) -> str:
    key = f"{PREFIX}/manifest.json"
    bucket.put_bytes(key, json.dumps({"format": "vessel.simple/1", "entries": entries}).encode())
    return key


def put_data(bucket: MinioStore, content: bytes) -> str:
    digest = hashlib.sha256(content).hexdigest()
    bucket.put_bytes(f"{PREFIX}/data/{digest}", content)
    return digest


def file_entry(path: str, content: bytes, digest: str) -> dict[str, Any]:
    return {"path": path, "type": "file", "mode": 0o644, "size": len(content), "sha256": digest}


def regular_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]


def leftovers(root: Path) -> list[str]:
    return [
        p.name
        for p in root.rglob("*")
        if p.name.startswith(".vessel-restore-") or p.name.endswith(".part.minio")
    ]


class RecordingStore:
    """The bucket, recording the key of every write in order."""

    def __init__(self, inner: MinioStore) -> None:
        self.inner = inner
        self.bucket = inner.bucket
        self.writes: list[str] = []

    def put_bytes(self, key: str, data: bytes) -> None:
        self.writes.append(key)
        self.inner.put_bytes(key, data)

    def put_file(self, key: str, path: Path) -> None:
        self.writes.append(key)
        self.inner.put_file(key, path)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "source"
    root.mkdir()
    make_tree(root)
    return root


def test_backup_then_restore_reproduces_the_tree(
    bucket: MinioStore, source: Path, tmp_path: Path
) -> None:
    repo = SimpleRepository(bucket)
    key, manifest = repo.backup(source, PREFIX)
    assert key == f"{PREFIX}/manifest.json"
    assert manifest.bytes == sum(p.stat().st_size for p in regular_files(source)) > 3 << 20
    restored = repo.restore(key, tmp_path / "target")
    assert restored == manifest
    expected = snapshot(source)
    assert snapshot(tmp_path / "target") == expected
    assert expected["a/secret.key"][1] == 0o600
    assert expected["a/link"] == ("symlink", "b/c/deep.txt")
    assert (tmp_path / "target" / "a" / "link").read_text() == "deep\n"


def test_identical_contents_are_stored_once(bucket: MinioStore, source: Path) -> None:
    SimpleRepository(bucket).backup(source, PREFIX)
    contents = {p.read_bytes() for p in regular_files(source)}
    assert len(contents) == len(regular_files(source)) - 1
    assert bucket.list(f"{PREFIX}/data/") == sorted(
        f"{PREFIX}/data/{hashlib.sha256(c).hexdigest()}" for c in contents
    )


def test_the_manifest_is_written_last(bucket: MinioStore, source: Path) -> None:
    store = RecordingStore(bucket)
    key, _ = SimpleRepository(store).backup(source, PREFIX)
    assert store.writes[-1] == key
    assert store.writes.count(key) == 1
    assert len(store.writes) == len(bucket.list(f"{PREFIX}/data/")) + 1


def test_restore_replaces_files_in_a_non_empty_target(
    bucket: MinioStore, source: Path, tmp_path: Path
) -> None:
    repo = SimpleRepository(bucket)
    key, _ = repo.backup(source, PREFIX)
    target = tmp_path / "target"
    (target / "a").mkdir(parents=True)
    (target / "copy-2.txt").write_text("old and much longer content\n")
    (target / "copy-2.txt").chmod(0o777)
    (target / "a" / "link").symlink_to("somewhere/else")
    repo.restore(key, target)
    assert snapshot(target) == snapshot(source)


def test_a_corrupted_object_is_detected_and_leaves_nothing(
    bucket: MinioStore, source: Path, tmp_path: Path
) -> None:
    repo = SimpleRepository(bucket)
    key, _ = repo.backup(source, PREFIX)
    digest = hashlib.sha256(b"deep\n").hexdigest()
    bucket.put_bytes(f"{PREFIX}/data/{digest}", b"deeq\n")
    target = tmp_path / "target"
    (target / "a" / "b" / "c").mkdir(parents=True)
    with pytest.raises(CorruptData) as raised:
        repo.restore(key, target)
    assert f"{PREFIX}/data/{digest}" in str(raised.value)
    assert not (target / "a" / "b" / "c" / "deep.txt").exists()
    assert leftovers(target) == []


def test_a_corrupted_object_keeps_the_previous_file(bucket: MinioStore, tmp_path: Path) -> None:
    content = b"new version"
    digest = put_data(bucket, content)
    bucket.put_bytes(f"{PREFIX}/data/{digest}", b"tampered!!!")
    key = put_manifest(bucket, [file_entry("f.txt", content, digest)])
    target = tmp_path / "target"
    target.mkdir()
    (target / "f.txt").write_bytes(b"old version")
    with pytest.raises(CorruptData):
        SimpleRepository(bucket).restore(key, target)
    assert (target / "f.txt").read_bytes() == b"old version"
    assert leftovers(target) == []


@pytest.mark.parametrize("bad_path", ["../escape", "a/../../escape", "{outside}/abs-escape"])
def test_a_manifest_path_leaving_the_target_is_refused(
    bucket: MinioStore, tmp_path: Path, bad_path: str
) -> None:
    bad_path = bad_path.format(outside=tmp_path)
    content = b"payload"
    digest = put_data(bucket, content)
    key = put_manifest(bucket, [file_entry(bad_path, content, digest)])
    target = tmp_path / "target"
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(UnsafePath) as raised:
        SimpleRepository(bucket).restore(key, target)
    assert repr(bad_path) in str(raised.value)
    assert sorted(p.name for p in tmp_path.iterdir() if p != target) == before


def test_a_symlink_in_the_target_does_not_lead_outside(bucket: MinioStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "target"
    target.mkdir()
    (target / "sub").symlink_to(outside)
    content = b"payload"
    digest = put_data(bucket, content)
    key = put_manifest(bucket, [file_entry("sub/file", content, digest)])
    with pytest.raises(UnsafePath):
        SimpleRepository(bucket).restore(key, target)
    assert list(outside.iterdir()) == []


def test_a_dir_entry_does_not_chmod_through_a_symlink(bucket: MinioStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o755)
    outside.chmod(0o755)
    target = tmp_path / "target"
    target.mkdir()
    (target / "sub").symlink_to(outside)
    key = put_manifest(bucket, [{"path": "sub", "type": "dir", "mode": 0o777}])
    with contextlib.suppress(UnsafePath):  # refusing is as good as replacing the link
        SimpleRepository(bucket).restore(key, target)
    assert stat.S_IMODE(outside.stat().st_mode) == 0o755


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'{"format": "other/9", "entries": []}',
        b'{"format": "vessel.simple/1"}',
    ],
)
def test_a_garbage_manifest_is_corrupt(bucket: MinioStore, tmp_path: Path, body: bytes) -> None:
    bucket.put_bytes(f"{PREFIX}/manifest.json", body)
    with pytest.raises(CorruptData) as raised:
        SimpleRepository(bucket).restore(f"{PREFIX}/manifest.json", tmp_path / "target")
    assert f"{PREFIX}/manifest.json" in str(raised.value)
    assert not (tmp_path / "target").exists()


def test_a_file_entry_without_checksum_is_corrupt(bucket: MinioStore, tmp_path: Path) -> None:
    key = put_manifest(bucket, [{"path": "f.txt", "type": "file", "mode": 0o644, "size": 3}])
    with pytest.raises(CorruptData):
        SimpleRepository(bucket).restore(key, tmp_path / "target")


def test_a_missing_manifest_is_not_found(bucket: MinioStore, tmp_path: Path) -> None:
    with pytest.raises(ObjectNotFound):
        SimpleRepository(bucket).restore(f"{PREFIX}/manifest.json", tmp_path / "target")
