"""Copying a snapshot between repositories moves only the blobs the destination lacks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.mover.repo.archiver import Archiver
from services.mover.repo.copy import IncompatibleRepositories, copy_snapshot
from services.mover.repo.repository import Repository
from services.mover.repo.restorer import Restorer
from tests.mover.repokit import PASSWORD
from vessel.objectstore.local import LocalStore
from vessel.sealed.providers.password import PasswordKey
from vessel_dev.rig.scenario import tree_digest


def tree(root: Path, shared: bytes, own: bytes) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "shared.bin").write_bytes(shared)
    (root / "sub" / "own.bin").write_bytes(own)
    return root


def test_copy_sends_only_missing_blobs_and_restores_exactly(tmp_path: Path) -> None:
    shared = os.urandom(3 << 20)
    source = Repository.init(
        LocalStore(tmp_path / "a"),
        "r",
        PasswordKey(PASSWORD),
        chunk_avg=64 << 10,
        pack_size=1 << 20,
    )
    target = Repository.init(
        LocalStore(tmp_path / "b"),
        "r",
        PasswordKey("another password"),
        pack_size=1 << 20,
        like=source,
    )
    assert target.key.encryption != source.key.encryption
    data = tree(tmp_path / "data", shared, os.urandom(1 << 20))
    snapshot_id, _ = Archiver(source).backup(data)
    Archiver(target).backup(tree(tmp_path / "other", shared, os.urandom(10)))  # has `shared`

    copied_id, stats = copy_snapshot(source, target, snapshot_id)

    assert stats.copied_bytes < (1 << 20) + (64 << 10)  # the new file and trees, not `shared`
    assert 0 < stats.copied_blobs < stats.blobs
    reopened = Repository.open(target.store, "r", PasswordKey("another password"))
    assert reopened.snapshots_doc(copied_id).tags["copied_from"] == snapshot_id
    Restorer(reopened).restore(copied_id, tmp_path / "out")
    assert tree_digest(tmp_path / "out") == tree_digest(data)
    again_id, again = copy_snapshot(source, target, snapshot_id)
    assert again.copied_blobs == 0 and again_id != ""


def test_unrelated_repositories_are_refused(tmp_path: Path) -> None:
    source = Repository.init(LocalStore(tmp_path / "a"), "r", PasswordKey(PASSWORD))
    target = Repository.init(LocalStore(tmp_path / "b"), "r", PasswordKey(PASSWORD))
    snapshot_id, _ = Archiver(source).backup(tree(tmp_path / "d", b"x", b"y"))
    with pytest.raises(IncompatibleRepositories, match="init --like"):
        copy_snapshot(source, target, snapshot_id)
