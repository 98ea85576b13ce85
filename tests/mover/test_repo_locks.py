"""Repository locks as an operator sees them: `vessel-repo locks` and `check` name each
lock's kind, owner and age and say which are stale, `unlock` removes the stale ones
(`--all` every one), and a prune tells whose running backups it waits for."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from services.mover.repo import locks
from services.mover.repo.cli import main
from services.mover.repo.locks import Held, LockDoc
from services.mover.repo.maintenance import prune
from services.mover.repo.repository import Repository
from services.mover.volumes import RepositoryData
from vessel.objectstore.local import LocalStore
from vessel.sealed.providers.password import PasswordKey


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Repository:
    monkeypatch.setenv("VESSEL_REPOSITORY_PASSWORD", "pw")
    return Repository.init(LocalStore(tmp_path / "store"), "repository", PasswordKey("pw"))


def cli(repo: Repository, *argv: str, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    store = repo.store
    assert isinstance(store, LocalStore)
    assert main(["--local", str(store.root), *argv]) == 0
    found: dict[str, object] = json.loads(capsys.readouterr().out)
    return found


def test_locks_are_listed_with_owner_and_age_and_the_stale_ones_removed(
    repo: Repository, capsys: pytest.CaptureFixture[str]
) -> None:
    running = Held(repo, "backup")
    dead = LockDoc("dead-mover", "backup", time.time() - locks.STALE_AFTER - 60, "node-7", 4242)
    locks._write(repo, dead)
    try:
        listed = {lock["id"]: lock for lock in cli(repo, "locks", capsys=capsys)["locks"]}  # type: ignore[union-attr]
        assert set(listed) == {running.doc.id, "dead-mover"}
        assert listed["dead-mover"]["owner"] == "node-7:4242" and listed["dead-mover"]["stale"]
        assert listed["dead-mover"]["age_seconds"] > locks.STALE_AFTER
        assert not listed[running.doc.id]["stale"] and listed[running.doc.id]["kind"] == "backup"
        checked = cli(repo, "check", capsys=capsys)
        assert {lock["id"] for lock in checked["locks"]} == set(listed)  # type: ignore[union-attr]
        assert cli(repo, "unlock", "--stale", capsys=capsys) == {"removed": ["dead-mover"]}
        assert [lock.id for lock in locks.all_locks(repo)] == [running.doc.id]
        assert cli(repo, "unlock", "--all", capsys=capsys) == {"removed": [running.doc.id]}
        assert locks.all_locks(repo) == []
    finally:
        running.release()


def test_a_prune_says_whose_backups_it_waits_for(repo: Repository) -> None:
    backup = Held(repo, "backup")
    said: list[str] = []
    threading.Timer(0.5, backup.release).start()
    report = prune(repo, poll=0.05, say=said.append)
    owner = f"{backup.doc.host}:{backup.doc.pid}"
    assert len(said) == 1 and said[0].startswith("prune waits for 1 running backups")
    assert owner in said[0]
    assert [w["owner"] for w in report.waited_for] == [owner]
    assert report.waited_seconds >= 0.4


def test_a_restarted_mover_clears_the_locks_its_previous_run_left(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed holding a backup lock, the mover of cluster-a starts again: the first time it
    opens the repository it removes that lock (same owner, an earlier process), never the
    locks of another mover."""
    store = repo.store
    monkeypatch.setattr(locks, "OWNER", "mover/cluster-a@node-1")
    now = time.time()
    earlier = LockDoc("earlier", "backup", now, "node-1", 7, [], "mover/cluster-a@node-1", "old")
    other = LockDoc("other", "backup", now, "node-1", 8, [], "mover/cluster-b@node-1", "b")
    for doc in (earlier, other):
        locks._write(repo, doc)
    reopened = RepositoryData(store, "repository", PasswordKey("pw"))
    reopened.repository()
    assert [lock.id for lock in locks.all_locks(repo)] == ["other"]
    mine = Held(repo, "backup")  # this run's own lock stays
    try:
        assert locks.clear_previous(repo) == []
        assert mine.doc.owner == "mover/cluster-a@node-1"
    finally:
        mine.release()
