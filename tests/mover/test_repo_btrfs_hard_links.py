"""Incremental backups driven by btrfs change tracking keep hard-linked files whole: a change
made through one name is a change of every name of that file."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from services.mover.volumes import RepositoryData
from tests.mover.fstree import compare_trees
from tests.mover.repokit import PASSWORD
from vessel.objectstore.local import LocalStore
from vessel.sealed.providers.password import PasswordKey

pytestmark = pytest.mark.root


def _btrfs(*args: str | Path) -> None:
    subprocess.run(["btrfs", *map(str, args)], check=True, capture_output=True)


def _change_through_one_name(path: Path, change: str) -> None:
    if change == "content":
        with path.open("r+b") as f:
            f.write(b"NEW")
    else:
        os.chmod(path, 0o600)


@pytest.mark.parametrize("change", ["content", "chmod"])
def test_change_through_one_name_of_a_hard_linked_file(
    btrfs_root: Path, tmp_path: Path, change: str
) -> None:
    _btrfs("subvolume", "create", btrfs_root / "vol")
    volume, snaps = btrfs_root / "vol", btrfs_root / "snaps"
    (volume / "x").mkdir()
    (volume / "y").mkdir()
    (volume / "x/a.txt").write_bytes(b"old content\n")
    os.link(volume / "x/a.txt", volume / "y/b.txt")
    snaps.mkdir()
    _btrfs("subvolume", "snapshot", "-r", volume, snaps / "s1")
    _change_through_one_name(volume / "x/a.txt", change)
    _btrfs("subvolume", "snapshot", "-r", volume, snaps / "s2")
    data = RepositoryData(LocalStore(tmp_path / "bucket"), "volumes", PasswordKey(PASSWORD))
    parent, _ = data.backup(snaps / "s1", None, {}, None)

    snapshot_id, _ = data.backup(snaps / "s2", parent, {}, None, parent_source=snaps / "s1")
    target = tmp_path / "restored"
    data.restore(snapshot_id, target, None)

    assert (target / "y/b.txt").read_bytes() == (snaps / "s2/x/a.txt").read_bytes()
    assert (target / "y/b.txt").stat().st_ino == (target / "x/a.txt").stat().st_ino
    assert compare_trees(snaps / "s2", target) == []
