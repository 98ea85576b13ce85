"""Reading a snapshot without restoring it (entries, byte ranges, walks) and restoring only
chosen paths, from a repository reopened from the store."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from services.mover.repo.archiver import Archiver
from services.mover.repo.browse import BadPath, SnapshotReader, path_parts
from services.mover.repo.repository import Repository
from services.mover.repo.restorer import Restorer
from tests.mover.repokit import reopen

BIG = random.Random(3).randbytes(3 << 20)  # spans many 64 KiB-average chunks


def volume(root: Path) -> Path:
    (root / "db").mkdir(parents=True)
    (root / "db" / "table.dat").write_bytes(BIG)
    (root / "db" / "table.dat").chmod(0o640)
    deep = root / "logs" / "2026" / "11"
    deep.mkdir(parents=True)
    for i in range(5):
        (deep / f"app-{i}.log").write_text(f"line {i}\n" * (i + 1))
    (root / "empty").write_bytes(b"")
    (root / "current").symlink_to("logs/2026/11/app-4.log")
    os.link(root / "db" / "table.dat", root / "db" / "again.dat")
    os.utime(deep, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    return root


@pytest.fixture
def backed_up(repo: Repository, tmp_path: Path) -> tuple[Repository, str]:
    source = volume(tmp_path / "source")
    snapshot_id, _ = Archiver(repo).backup(source)
    return reopen(repo), snapshot_id


def test_entries_stat_and_byte_ranges(backed_up: tuple[Repository, str]) -> None:
    repo, snapshot_id = backed_up
    reader = SnapshotReader(repo, snapshot_id)
    root = [(e.path, e.kind) for e in reader.entries("/")]
    assert root == [("/current", "symlink"), ("/db", "dir"), ("/empty", "file"), ("/logs", "dir")]
    assert reader.find("db").size == 2 * len(BIG)  # a directory's subtree bytes
    logs = reader.entries("logs/2026/11/")
    assert [e.path for e in logs] == [f"/logs/2026/11/app-{i}.log" for i in range(5)]
    table = reader.find("/db/table.dat").node
    assert table is not None and table.mode == 0o640 and len(table.content) > 10
    assert reader.read(table, 0, len(BIG) + 10) == BIG
    for offset, length in [(0, 1), (100_000, 300_000), (len(BIG) - 5, 100), (len(BIG), 10)]:
        assert reader.read(table, offset, length) == BIG[offset : offset + length]
    walked = [f.path for f in reader.walk("/logs")]
    assert walked[:3] == ["/logs", "/logs/2026", "/logs/2026/11"] and len(walked) == 8
    assert reader.find("current").node.fs_target == "logs/2026/11/app-4.log"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("../etc/passwd", "'..' is not allowed"),
        ("db/../../x", "'..' is not allowed"),
        ("db//table.dat", "an empty name"),
        ("./db", "'.' is not allowed"),
        ("db/missing", "/db/missing is not in snapshot"),
        ("empty/inside", "/empty is a file, not a directory"),
        ("current/x", "/current is a symlink, not a directory"),  # a link is never followed
        ("a\x00b", "holds NUL"),
    ],
)
def test_bad_paths_are_refused_by_name(
    backed_up: tuple[Repository, str], path: str, why: str
) -> None:
    repo, snapshot_id = backed_up
    with pytest.raises(BadPath, match=why.replace(".", r"\.").replace("(", r"\(")):
        SnapshotReader(repo, snapshot_id).find(path)


def test_path_parts() -> None:
    assert path_parts("/") == [] and path_parts("") == []
    assert path_parts("/a/b/") == ["a", "b"] and path_parts("a/b") == ["a", "b"]


def test_restore_of_chosen_paths_in_place_and_elsewhere(
    backed_up: tuple[Repository, str], tmp_path: Path
) -> None:
    repo, snapshot_id = backed_up
    target = tmp_path / "live"
    target.mkdir()
    (target / "db").mkdir()
    (target / "db" / "table.dat").write_bytes(b"damaged")
    (target / "db" / "keep.me").write_bytes(b"untouched")

    stats = Restorer(repo).restore(snapshot_id, target, ["/db/table.dat", "logs/2026"])
    assert (target / "db" / "table.dat").read_bytes() == BIG
    assert (target / "db" / "table.dat").stat().st_mode & 0o777 == 0o640
    assert (target / "db" / "keep.me").read_bytes() == b"untouched"
    assert not (target / "empty").exists() and not (target / "db" / "again.dat").exists()
    assert (target / "logs/2026/11/app-3.log").read_text() == "line 3\n" * 4
    assert (target / "logs/2026/11").stat().st_mtime_ns == 1_600_000_000_000_000_000
    assert stats.files == 6

    Restorer(repo).restore(snapshot_id, target, ["current", "empty"], into="restored/today")
    assert os.readlink(target / "restored/today/current") == "logs/2026/11/app-4.log"
    assert (target / "restored/today/empty").read_bytes() == b""
    assert (target / "restored").stat().st_mode & 0o777 == 0o755


def test_restore_into_refuses_a_link_out_of_the_volume(
    backed_up: tuple[Repository, str], tmp_path: Path
) -> None:
    repo, snapshot_id = backed_up
    outside, target = tmp_path / "outside", tmp_path / "live"
    outside.mkdir()
    target.mkdir()
    (target / "restored").symlink_to(outside)  # planted by whoever uses the volume
    Restorer(repo).restore(snapshot_id, target, ["empty"], into="restored")
    assert list(outside.iterdir()) == []  # the link was replaced, never followed
    assert (target / "restored").is_dir() and not (target / "restored").is_symlink()
    assert (target / "restored" / "empty").exists()


@pytest.mark.parametrize(
    ("paths", "why"),
    [(["/"], "the root is not a path to pick"), (["db", "db/table.dat"], "inside it")],
)
def test_overlapping_or_root_paths_are_refused(
    backed_up: tuple[Repository, str], tmp_path: Path, paths: list[str], why: str
) -> None:
    repo, snapshot_id = backed_up
    with pytest.raises(BadPath, match=why):
        Restorer(repo).restore(snapshot_id, tmp_path / "t", paths)
    assert not (tmp_path / "t").exists() or list((tmp_path / "t").iterdir()) == []
