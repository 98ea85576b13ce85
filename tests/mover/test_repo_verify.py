"""A restored tree read back against its snapshot: identical passes, and every kind of
difference is found and named by path (content of the same size, a missing entry, a
changed link, a directory swapped for a link that is not followed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.mover.repo.archiver import Archiver
from services.mover.repo.repository import Repository
from services.mover.repo.restorer import Restorer
from services.mover.repo.verify import RestoreDiffers, verify_restored
from tests.mover.repokit import reopen
from tests.mover.test_repo_browse import BIG, volume


@pytest.fixture
def restored(repo: Repository, tmp_path: Path) -> tuple[Repository, str, Path]:
    snapshot_id, _ = Archiver(repo).backup(volume(tmp_path / "source"))
    repo = reopen(repo)
    Restorer(repo).restore(snapshot_id, tmp_path / "target")
    return repo, snapshot_id, tmp_path / "target"


def test_an_identical_restore_passes(restored: tuple[Repository, str, Path]) -> None:
    repo, snapshot_id, target = restored
    (target / "extra.txt").write_text("not in the backup: a restore never deletes it")
    checked = verify_restored(repo, snapshot_id, target)
    assert checked.files == 8 and checked.bytes == 2 * len(BIG) + sum(
        len(f"line {i}\n") * (i + 1) for i in range(5)
    )
    assert checked.progress.files == 8 and checked.progress.total == checked.bytes


def test_every_difference_is_named(restored: tuple[Repository, str, Path]) -> None:
    repo, snapshot_id, target = restored
    data = bytearray((target / "db/table.dat").read_bytes())
    data[1_800_000] ^= 1  # one bit, same size
    (target / "db/table.dat").write_bytes(bytes(data))
    (target / "logs/2026/11/app-2.log").unlink()
    (target / "current").unlink()
    (target / "current").symlink_to("/etc/passwd")
    outside = target.parent / "outside"
    (target / "logs/2026/11").rename(outside)
    (target / "logs/2026/11").symlink_to(outside)  # a link where a directory was
    with pytest.raises(RestoreDiffers) as differs:
        verify_restored(repo, snapshot_id, target)
    text = str(differs.value)
    assert "in 4 entries" in text
    assert "/db/table.dat: content differs (from chunk " in text
    assert "/db/again.dat: content differs" in text  # its hard link: the same bytes
    assert "/current: points to '/etc/passwd', not 'logs/2026/11/app-4.log'" in text
    assert "/logs/2026/11: is a symlink, the backup holds a dir" in text
    assert "app-2.log" not in text  # below the swapped directory: never read through the link
    os.unlink(target / "logs/2026/11")
