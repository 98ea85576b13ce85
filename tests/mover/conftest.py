"""Fixtures for the backup repository tests: an object store (a local directory and a
bucket on the real S3 server), a fresh repository in it, and a rich source tree.

Building and comparing trees: `tests/mover/fstree.py` (`build_rich_tree`, `compare_trees`);
creating, reopening and crafting repositories: `tests/mover/repokit.py`."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.mover.repo.repository import Repository
from tests.mover.fstree import RichTree, build_rich_tree
from tests.mover.repokit import new_repository
from vessel.objectstore.base import ObjectStore
from vessel.objectstore.local import LocalStore


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        local = LocalStore(tmp_path / "bucket")
        local.ensure_bucket()
        return local
    bucket: ObjectStore = request.getfixturevalue("bucket")
    return bucket


@pytest.fixture
def repo(store: ObjectStore) -> Repository:
    """A fresh repository: 64 KiB average chunks and 1 MiB packs, so trees span many packs."""
    return new_repository(store)


@pytest.fixture(scope="session")
def rich_tree(tmp_path_factory: pytest.TempPathFactory) -> RichTree:
    """Every kind of entry (built once; tests only read it)."""
    return build_rich_tree(tmp_path_factory.mktemp("rich") / "source")
