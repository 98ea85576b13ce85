"""De-duplication across trees, and incremental backups that skip unchanged files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from services.mover.repo.archiver import Archiver
from services.mover.repo.repository import Repository
from tests.mover.fstree import KIB, MIB, compare_trees, random_bytes, text_bytes
from tests.mover.repokit import (
    blobs_in_packs,
    count_puts,
    data_keys,
    file_node_chunks,
    pack_ids,
    restore_fresh,
)


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Paths of the files the archiver reads (chunks) from now on."""
    reads: list[Path] = []
    original = Archiver._chunk

    def chunk(self: Archiver, path: Path, st: os.stat_result) -> tuple[list[str], bool]:
        reads.append(path)
        return original(self, path, st)

    monkeypatch.setattr(Archiver, "_chunk", chunk)
    return reads


def _many_files(root: Path, count: int) -> list[Path]:
    paths = []
    for i in range(count):
        path = root / f"dir{i % 5}" / f"file{i:02d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text_bytes(2 * KIB + i))
        paths.append(path)
    return paths


def test_a_file_shared_by_two_trees_is_stored_once(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = random_bytes(4 * MIB, 10)
    first, second = tmp_path / "first", tmp_path / "second"
    (second / "elsewhere").mkdir(parents=True)
    first.mkdir()
    (first / "shared.bin").write_bytes(shared)
    (first / "a.txt").write_bytes(b"only in the first tree")
    (second / "elsewhere/copy.bin").write_bytes(shared)
    (second / "b.bin").write_bytes(random_bytes(100 * KIB, 11))

    _, doc_1 = Archiver(repo).backup(first)
    shared_chunks = set(file_node_chunks(repo, doc_1.tree, "shared.bin"))
    assert len(shared_chunks) > 10
    packs_before, index_before = pack_ids(repo), set(repo.index)

    puts = count_puts(monkeypatch, repo.store)
    id_2, doc_2 = Archiver(repo).backup(second)

    new_entries = {k.hex(): repo.index[k] for k in set(repo.index) - index_before}
    new_data = {i for i, loc in new_entries.items() if loc.type == "data"}
    assert new_data == set(file_node_chunks(repo, doc_2.tree, "b.bin"))
    assert not new_data & shared_chunks
    assert blobs_in_packs(repo, pack_ids(repo) - packs_before) == set(new_entries)
    uploaded = sum(len(repo.store.get_bytes(k)) for k in data_keys(puts))
    assert uploaded < 200 * KIB  # the 4 MiB file was not uploaded again
    restore_fresh(repo, id_2, tmp_path / "restored")
    assert compare_trees(second, tmp_path / "restored") == []


def test_unchanged_tree_with_parent_reads_no_file(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "source"
    _many_files(source, 20)
    (source / "big.bin").write_bytes(random_bytes(2 * MIB, 12))
    first_id, _ = Archiver(repo).backup(source)
    index_before = set(repo.index)

    reads = _count_reads(monkeypatch)
    second_id, second = Archiver(repo).backup(source, parent=first_id)

    assert reads == []
    assert second.parent == first_id
    assert second.files == 21 and second.bytes > 2 * MIB
    assert all(repo.index[k].type == "tree" for k in set(repo.index) - index_before)
    restore_fresh(repo, second_id, tmp_path / "restored")
    assert compare_trees(source, tmp_path / "restored") == []


def test_unchanged_tree_with_parent_adds_no_pack(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "source"
    paths = _many_files(source, 10)
    for path in paths:  # an access time older than the content, as on any live volume
        st = path.stat()
        os.utime(path, ns=(st.st_mtime_ns - 10**9, st.st_mtime_ns))
    atimes = [p.stat().st_atime_ns for p in paths]
    first_id, _ = Archiver(repo).backup(source)
    if [p.stat().st_atime_ns for p in paths] == atimes:
        pytest.skip("this filesystem does not update access times")

    puts = count_puts(monkeypatch, repo.store)
    Archiver(repo).backup(source, parent=first_id)

    assert data_keys(puts) == []


def test_only_the_changed_file_is_read_again(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "source"
    paths = _many_files(source, 50)
    first_id, _ = Archiver(repo).backup(source)
    changed = paths[17]
    time.sleep(0.02)
    changed.write_bytes(b"new content of a different size")

    reads = _count_reads(monkeypatch)
    second_id, _ = Archiver(repo).backup(source, parent=first_id)

    assert reads == [changed]
    restore_fresh(repo, second_id, tmp_path / "restored")
    assert compare_trees(source, tmp_path / "restored") == []
    restore_fresh(repo, first_id, tmp_path / "first")
    assert (tmp_path / "first" / changed.relative_to(source)).read_bytes() == text_bytes(
        2 * KIB + 17
    )


def test_same_size_and_mtime_but_new_ctime_is_read_again(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "source"
    paths = _many_files(source, 5)
    victim = paths[2]
    old = victim.stat()
    first_id, _ = Archiver(repo).backup(source)
    time.sleep(0.02)
    new_content = bytes(reversed(victim.read_bytes()))
    with victim.open("r+b") as f:  # same inode, same size
        f.write(new_content)
    os.utime(victim, ns=(old.st_atime_ns, old.st_mtime_ns))
    now = victim.stat()
    assert (now.st_size, now.st_mtime_ns, now.st_ino) == (old.st_size, old.st_mtime_ns, old.st_ino)
    assert now.st_ctime_ns != old.st_ctime_ns

    reads = _count_reads(monkeypatch)
    second_id, _ = Archiver(repo).backup(source, parent=first_id)

    assert reads == [victim]
    target = tmp_path / "restored"
    restore_fresh(repo, second_id, target)
    assert (target / victim.relative_to(source)).read_bytes() == new_content
    assert compare_trees(source, target) == []
