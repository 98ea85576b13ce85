"""Incremental backups of btrfs snapshots visit only what the send stream says changed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from services.mover.repo.archiver import Archiver
from services.mover.repo.btrfs_changes import (
    ChangeTrackingUnavailable,
    changed_paths,
    dirty_directories,
)
from services.mover.repo.repository import Repository
from services.mover.repo.restorer import Restorer
from vessel.objectstore.local import LocalStore
from vessel.sealed.providers.password import PasswordKey
from vessel_dev.rig.scenario import tree_digest

pytestmark = pytest.mark.timeout(120)


def btrfs(*args: str | Path) -> None:
    subprocess.run(["btrfs", *map(str, args)], check=True, capture_output=True)


@pytest.fixture
def volume(btrfs_root: Path) -> Path:
    btrfs("subvolume", "create", btrfs_root / "vol")
    vol = btrfs_root / "vol"
    for d in range(20):
        (vol / f"dir{d:02d}" / "deep").mkdir(parents=True)
        for f in range(25):
            (vol / f"dir{d:02d}" / "deep" / f"file {f}.txt").write_text(f"{d}-{f}\n" * 50)
    (vol / "big.bin").write_bytes(os.urandom(3 << 20))
    (btrfs_root / "snaps").mkdir()
    return vol


def snapshot(vol: Path, name: str) -> Path:
    target = vol.parent / "snaps" / name
    btrfs("subvolume", "snapshot", "-r", vol, target)
    return target


def change(vol: Path) -> None:
    (vol / "dir03" / "deep" / "file 4.txt").write_text("rewritten\n")
    (vol / "dir07" / "deep" / "file 1.txt").unlink()
    (vol / "dir07" / "deep" / "file 2.txt").rename(vol / "dir08" / "moved here.txt")
    os.chmod(vol / "dir09" / "deep" / "file 9.txt", 0o600)
    (vol / "dir11" / "new dir").mkdir()
    (vol / "dir11" / "new dir" / "fresh").write_bytes(b"new data")
    with (vol / "big.bin").open("r+b") as f:
        f.seek(1 << 20)
        f.write(b"x" * 4096)


def test_changed_paths_lists_exactly_what_changed(volume: Path) -> None:
    first = snapshot(volume, "s1")
    change(volume)
    second = snapshot(volume, "s2")
    changed = changed_paths(first, second)
    expected = {
        "dir03/deep/file 4.txt",
        "dir07/deep/file 1.txt",
        "dir08/moved here.txt",
        "dir09/deep/file 9.txt",
        "dir11/new dir",
        "dir11/new dir/fresh",
        "big.bin",
    }
    assert expected <= changed
    untouched = {p for p in changed if p.startswith(("dir00", "dir01", "dir15"))}
    assert not untouched
    dirty = dirty_directories(changed)
    assert {"", "dir03", "dir03/deep", "dir11"} <= dirty and "dir15" not in dirty


def test_incremental_visits_only_changed_paths_and_restores_exactly(
    volume: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = Repository.init(LocalStore(tmp_path / "repo"), "r", PasswordKey("pw"))
    first = snapshot(volume, "s1")
    parent_id, _ = Archiver(repo).backup(first)
    change(volume)
    second = snapshot(volume, "s2")
    listed: list[str] = []
    real_scandir = os.scandir

    def counting_scandir(path: str | os.PathLike[str]) -> object:
        listed.append(str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", counting_scandir)
    snapshot_id, doc = Archiver(repo).backup(
        second, parent=parent_id, changed=changed_paths(first, second)
    )
    monkeypatch.undo()
    visited = {
        Path(p).relative_to(second).as_posix() for p in listed if Path(p).is_relative_to(second)
    }
    assert visited <= {
        ".",
        "dir03",
        "dir03/deep",
        "dir07",
        "dir07/deep",
        "dir08",
        "dir09",
        "dir09/deep",
        "dir11",
        "dir11/new dir",
    }
    assert doc.files == 20 * 25 + 1  # unchanged files are counted, not read
    Restorer(repo).restore(snapshot_id, tmp_path / "out")
    assert tree_digest(tmp_path / "out") == tree_digest(second)


def test_unrelated_snapshots_are_refused(volume: Path, btrfs_root: Path) -> None:
    first = snapshot(volume, "s1")
    btrfs("subvolume", "create", btrfs_root / "other")
    btrfs("subvolume", "snapshot", "-r", btrfs_root / "other", btrfs_root / "snaps" / "o1")
    with pytest.raises(ChangeTrackingUnavailable, match="not snapshots of the same subvolume"):
        changed_paths(btrfs_root / "snaps" / "o1", first)
