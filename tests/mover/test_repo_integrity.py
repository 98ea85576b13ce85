"""Keys, formats and damaged objects: a restore never yields bytes other than those backed
up, and every failure is a repository error that names the object."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from services.mover.repo.archiver import Archiver
from services.mover.repo.errors import (
    CorruptObject,
    RepositoryError,
    RepositoryMissing,
    UnknownFormat,
    WrongPassword,
)
from services.mover.repo.repository import Repository
from services.mover.repo.restorer import Restorer
from tests.mover.fstree import KIB, random_bytes
from tests.mover.repokit import PASSWORD, PREFIX, index_docs, objects, reopen, restore_fresh
from vessel.objectstore.base import ObjectNotFound, ObjectStore
from vessel.sealed.providers.password import PasswordKey


def _files(source: Path, count: int, size: int) -> dict[str, bytes]:
    source.mkdir()
    contents = {f"f{i}.bin": random_bytes(size, 100 + i) for i in range(count)}
    for name, data in contents.items():
        (source / name).write_bytes(data)
    return contents


def test_wrong_password_and_missing_repository(repo: Repository, store: ObjectStore) -> None:
    with pytest.raises(WrongPassword):
        Repository.open(store, PREFIX, PasswordKey("not the password"))
    with pytest.raises(RepositoryMissing, match="elsewhere"):
        Repository.open(store, "elsewhere", PasswordKey(PASSWORD))
    assert reopen(repo).config == repo.config


def test_flipped_byte_in_a_pack(repo: Repository, tmp_path: Path) -> None:
    originals = _files(tmp_path / "source", 8, 400 * KIB)
    snapshot_id, doc = Archiver(repo, workers=1).backup(tmp_path / "source")
    assert len(objects(repo, "data")) >= 3
    nodes = {n.name: n for n in repo.read_tree(doc.tree).nodes}
    victim = bytes.fromhex(nodes["f3.bin"].content[0])
    bad = repo.index[victim]
    key = repo.pack_key(bad.pack)
    damaged = bytearray(repo.store.get_bytes(key))
    damaged[bad.offset + bad.length // 2] ^= 0x01
    repo.store.put_bytes(key, bytes(damaged))

    target = tmp_path / "target"
    with pytest.raises(CorruptObject) as raised:
        restore_fresh(repo, snapshot_id, target)

    assert bad.pack in str(raised.value)
    restored = {p.name: p.read_bytes() for p in target.iterdir()}
    assert restored.get("f3.bin") != originals["f3.bin"]
    intact = []
    for name, node in nodes.items():  # each chunk holds its own bytes, or nothing was written
        got, offset = restored.get(name, b""), 0
        for hex_id in node.content:
            size = repo.index[bytes.fromhex(hex_id)].raw_length
            region = got[offset : offset + size]
            assert region in (originals[name][offset : offset + len(region)], bytes(len(region)))
            offset += size
        if all(repo.index[bytes.fromhex(h)].pack != bad.pack for h in node.content):
            intact.append(name)
    assert intact  # files whose packs are intact are restored byte for byte
    assert all(restored[name] == originals[name] for name in intact)


@pytest.mark.parametrize("cut", ["inside-root-tree", "at-root-tree-start", "half-of-a-data-pack"])
def test_truncated_pack(
    repo: Repository, tmp_path: Path, cut: str, request: pytest.FixtureRequest
) -> None:
    _files(tmp_path / "source", 5, 500 * KIB)
    snapshot_id, doc = Archiver(repo, workers=1).backup(tmp_path / "source")
    tree = repo.index[bytes.fromhex(doc.tree)]
    if cut == "half-of-a-data-pack":
        pack = sorted({loc.pack for loc in repo.index.values()} - {tree.pack})[0]
    else:
        pack = tree.pack
    key = repo.pack_key(pack)
    data = repo.store.get_bytes(key)
    size = {
        "inside-root-tree": tree.offset + tree.length // 2,
        "at-root-tree-start": tree.offset,
        "half-of-a-data-pack": len(data) // 2,
    }[cut]
    repo.store.put_bytes(key, data[:size])

    with pytest.raises(CorruptObject) as raised:
        restore_fresh(repo, snapshot_id, tmp_path / "target")
    assert pack in str(raised.value)


@pytest.mark.parametrize("which", ["all", "those-of-data-packs"])
def test_deleted_index_objects(repo: Repository, tmp_path: Path, which: str) -> None:
    _files(tmp_path / "source", 4, 600 * KIB)
    snapshot_id, doc = Archiver(repo, workers=1).backup(tmp_path / "source")
    tree_pack = repo.index[bytes.fromhex(doc.tree)].pack
    deleted = 0
    for index_id, index in index_docs(repo).items():
        if which == "all" or all(entry.pack != tree_pack for entry in index.packs):
            repo.store.delete(repo.path("index", index_id))
            deleted += 1
    assert deleted >= 2

    reopened = reopen(repo)
    with pytest.raises(RepositoryError) as raised:
        Restorer(reopened).restore(snapshot_id, tmp_path / "target")
    named = re.findall(r"[0-9a-f]{64}", str(raised.value))
    assert any(bytes.fromhex(h) not in reopened.index for h in named), str(raised.value)


def test_unknown_repository_format(repo: Repository) -> None:
    config = json.loads(repo.config.model_dump_json())
    config["format"] = "vessel.repo/9"
    sealed = repo.key.seal(json.dumps(config).encode(), b"config")
    repo.store.put_bytes(repo.path("config"), sealed)
    with pytest.raises(UnknownFormat, match="config"):
        reopen(repo)


def test_a_document_moved_to_another_role(repo: Repository, tmp_path: Path) -> None:
    _files(tmp_path / "source", 1, KIB)
    snapshot_id, _ = Archiver(repo).backup(tmp_path / "source")
    sealed = repo.store.get_bytes(repo.path("snapshots", snapshot_id))
    repo.store.put_bytes(repo.path("index", snapshot_id), sealed)
    with pytest.raises(CorruptObject, match=f"index/{snapshot_id}"):
        reopen(repo)


def _extra_key(kind: str, repo: Repository) -> bytes:
    if kind == "other-password":
        return json.dumps(PasswordKey("second password").wrap(repo.key)).encode()
    return {
        "not-json": b"\x00\xff not a key",
        "json-list": b"[]",
        "kms-key": json.dumps(
            {"format": "vessel.kms/1", "key_id": "arn:aws:kms:eu:1:key/x", "data": "AAAA"}
        ).encode(),
    }[kind]


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("other-password", "0" * 64),
        ("other-password", "f" * 64),
        ("not-json", "f" * 64),
        ("json-list", "f" * 64),
        ("kms-key", "f" * 64),
        ("not-json", "0" * 64),
        ("json-list", "0" * 64),
        ("kms-key", "0" * 64),
    ],
)
def test_other_key_files_do_not_lock_the_password_out(
    repo: Repository, kind: str, name: str
) -> None:
    (good,) = objects(repo, "keys")
    repo.store.put_bytes(repo.path("keys", name), _extra_key(kind, repo))
    assert sorted(objects(repo, "keys"))[0 if name == "f" * 64 else 1] == good
    assert reopen(repo).config == repo.config
    if kind == "other-password":
        reopened = Repository.open(repo.store, repo.prefix, PasswordKey("second password"))
        assert reopened.key.chunk_id == repo.key.chunk_id


def test_missing_snapshot_is_named(repo: Repository, tmp_path: Path) -> None:
    missing = os.urandom(32).hex()
    target = tmp_path / "target"
    with pytest.raises(ObjectNotFound, match=missing):
        Restorer(repo).restore(missing, target)
    assert not target.exists()
    (tmp_path / "source").mkdir()
    with pytest.raises(ObjectNotFound, match=missing):
        Archiver(repo).backup(tmp_path / "source", parent=missing)
    assert objects(repo, "snapshots") == []
