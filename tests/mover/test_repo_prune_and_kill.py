"""Prune while a backup runs, and backups killed with SIGKILL at several points."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from services.mover.repo.archiver import Archiver
from services.mover.repo.check import check
from services.mover.repo.locks import Held
from services.mover.repo.maintenance import forget, prune
from services.mover.repo.repository import Repository
from tests.mover.repokit import (
    PASSWORD,
    PREFIX,
    blobs_in_packs,
    new_repository,
    pack_ids,
    restore_fresh,
)
from vessel.objectstore.base import Retain
from vessel.objectstore.local import LocalStore
from vessel.sealed.providers.password import PasswordKey
from vessel_dev.rig.scenario import tree_digest

pytestmark = pytest.mark.timeout(120)


def write_tree(root: Path, seed: int, files: int = 6, size: int = 600 << 10) -> Path:
    root.mkdir(parents=True)
    for i in range(files):
        (root / f"f{i}.bin").write_bytes(os.urandom(size) if seed else bytes(size))
    return root


class SlowStore(LocalStore):
    """A store whose pack uploads wait at a gate while it is closed."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = threading.Event()

    def put_bytes(self, key: str, data: bytes, retain: Retain | None = None) -> None:
        if "/data/" in key and not self.gate.is_set():
            self.waiting.set()
            self.gate.wait(30)
        super().put_bytes(key, data, retain)


def open_repo(store: LocalStore) -> Repository:
    return Repository.open(store, PREFIX, PasswordKey(PASSWORD))


def test_prune_during_a_backup_keeps_what_the_backup_reuses(tmp_path: Path) -> None:
    store = SlowStore(tmp_path / "bucket")
    store.ensure_bucket()
    repo = new_repository(store)
    old = write_tree(tmp_path / "old", seed=1)
    old_id, _ = Archiver(repo).backup(old)
    forget(repo, [old_id])  # its data is unreferenced now: prune wants to delete it
    source = tmp_path / "new"
    source.mkdir()
    for path in old.iterdir():  # the same content again, which the backup will reuse
        (source / path.name).write_bytes(path.read_bytes())
    (source / "extra.bin").write_bytes(os.urandom(700 << 10))
    results: dict[str, object] = {}
    store.gate.clear()
    backup = threading.Thread(target=lambda: results.update(backup=Archiver(repo).backup(source)))
    backup.start()
    assert store.waiting.wait(20)  # the backup holds its lock and is uploading
    pruner = threading.Thread(
        target=lambda: results.update(prune=prune(open_repo(store), poll=0.05))
    )
    pruner.start()
    time.sleep(0.5)
    assert pruner.is_alive(), "prune must wait for the backup that was running"
    store.gate.set()
    backup.join(30)
    pruner.join(30)
    snapshot_id = results["backup"][0]  # type: ignore[index]
    assert results["prune"].waited_seconds > 0  # type: ignore[attr-defined]
    fresh = open_repo(store)
    report = check(fresh, read_data=True)
    assert report.errors == []
    restore_fresh(fresh, snapshot_id, tmp_path / "out")
    assert tree_digest(tmp_path / "out") == tree_digest(source)


def test_a_backup_started_during_a_prune_does_not_reuse_doomed_packs(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "bucket")
    repo = new_repository(store)
    old = write_tree(tmp_path / "old", seed=1)
    old_id, _ = Archiver(repo).backup(old)
    doomed = {loc.pack for loc in repo.index.values()}
    forget(repo, [old_id])
    marker = Held(repo, "prune", sorted(doomed))  # a prune that is about to delete
    try:
        snapshot_id, _ = Archiver(open_repo(store)).backup(old)
    finally:
        marker.release()
    fresh = open_repo(store)
    tree = fresh.read_tree(fresh.snapshots_doc(snapshot_id).tree)
    used = {c for n in tree.nodes for c in n.content}
    new_packs = pack_ids(fresh) - doomed
    assert used and used <= blobs_in_packs(fresh, new_packs)  # stored again, not reused
    report = prune(fresh)
    assert report.deleted_packs == len(doomed)
    restore_fresh(open_repo(store), snapshot_id, tmp_path / "out")
    assert tree_digest(tmp_path / "out") == tree_digest(old)


@pytest.mark.parametrize("packs_before_kill", [1, 2])
def test_backup_killed_with_sigkill_resumes_and_never_leaves_a_snapshot(
    tmp_path: Path, packs_before_kill: int
) -> None:
    source = write_tree(tmp_path / "src", seed=1, files=12, size=4 << 20)  # 3 packs
    local = tmp_path / "repo"
    env = {**os.environ, "VESSEL_REPOSITORY_PASSWORD": PASSWORD}
    cli = [
        sys.executable,
        "-m",
        "services.mover.repo.cli",
        "--local",
        str(local),
        "--prefix",
        PREFIX,
    ]
    subprocess.run([*cli, "init"], env=env, check=True, capture_output=True)
    store = LocalStore(local)
    victim = subprocess.Popen(
        [*cli, "backup", str(source)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while len(store.list(f"{PREFIX}/index/")) < packs_before_kill and victim.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL, "the backup ended before the kill"
    assert store.list(f"{PREFIX}/snapshots/") == []  # no false snapshot
    uploaded_before = set(store.list(f"{PREFIX}/data/"))
    repo = open_repo(store)
    report = check(repo, read_data=True)
    assert report.errors == []  # what was stored is whole; unindexed packs are warnings only
    snapshot_id, _ = Archiver(repo).backup(source)
    uploaded_after = set(store.list(f"{PREFIX}/data/"))
    indexed_before = {loc.pack for loc in repo.index.values()} & uploaded_before
    assert indexed_before <= uploaded_after  # nothing stored was lost
    restore_fresh(open_repo(store), snapshot_id, tmp_path / "out")
    assert tree_digest(tmp_path / "out") == tree_digest(source)
