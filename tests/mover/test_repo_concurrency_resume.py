"""Concurrent writers, interrupted backups that the next attempt resumes, and races and
failures inside one backup or restore."""

from __future__ import annotations

import errno
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from services.mover.repo.archiver import Archiver
from services.mover.repo.format import SnapshotDoc
from services.mover.repo.repository import Repository
from services.mover.repo.restorer import Restorer
from services.mover.volumes import RepositoryData
from tests.mover.fstree import KIB, MIB, OLD_NS, compare_trees, random_bytes, set_times
from tests.mover.repokit import (
    PASSWORD,
    Crafter,
    blobs_in_packs,
    count_puts,
    data_keys,
    index_docs,
    new_repository,
    objects,
    pack_ids,
    reopen,
    restore_fresh,
)
from vessel.objectstore.base import ObjectStore, Retain, StoreUnavailable
from vessel.objectstore.local import LocalStore
from vessel.sealed.providers.password import PasswordKey


def _tree(root: Path, seed: int, shared: bytes) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "shared.bin").write_bytes(shared)
    for i in range(6):
        (root / f"file{i}.bin").write_bytes(random_bytes(300 * KIB, seed * 100 + i))
        (root / "sub" / f"small{i}.txt").write_bytes(f"{seed}-{i}\n".encode())
    set_times(root)
    return root


@pytest.mark.parametrize("repositories", ["one-object", "opened-twice"])
def test_parallel_backups_into_one_repository(
    repo: Repository, tmp_path: Path, repositories: str
) -> None:
    shared = random_bytes(2 * MIB, 7)
    sources = [_tree(tmp_path / f"source{i}", i, shared) for i in (1, 2)]
    writers = [repo, repo if repositories == "one-object" else reopen(repo)]

    with ThreadPoolExecutor(2) as pool:
        futures = [
            pool.submit(Archiver(r).backup, s, tags={"n": str(i)})
            for i, (r, s) in enumerate(zip(writers, sources, strict=True))
        ]
        results = [f.result() for f in futures]

    reopened = reopen(repo)
    assert set(reopened.snapshots()) == {snapshot_id for snapshot_id, _ in results}
    for i, (snapshot_id, _) in enumerate(results):
        target = tmp_path / f"restored{i}"
        Restorer(reopened, workers=1).restore(snapshot_id, target)
        assert compare_trees(sources[i], target) == []


def test_interrupted_backup_is_resumed(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for i in range(6):
        (source / f"part{i}.bin").write_bytes(random_bytes(700 * KIB, 40 + i))
    reference = new_repository(repo.store, "reference")
    Archiver(reference).backup(source)
    full = len(objects(reference, "data"))
    assert full >= 4

    stored: list[str] = []
    lock = threading.Lock()
    real_put = repo.store.put_bytes

    def failing_put(key: str, data: bytes, retain: Retain | None = None) -> None:
        if "/data/" in key:
            with lock:
                if len(stored) >= 2:
                    raise StoreUnavailable(f"{key}: injected outage")
                stored.append(key)
        real_put(key, data, retain)

    monkeypatch.setattr(repo.store, "put_bytes", failing_put)
    with pytest.raises(StoreUnavailable, match="injected outage"):
        Archiver(repo).backup(source)
    monkeypatch.undo()

    assert sorted(objects(repo, "data")) == sorted(stored)
    indexed = {entry.pack for doc in index_docs(repo).values() for entry in doc.packs}
    assert indexed == pack_ids(repo)  # every stored pack is indexed
    assert len(objects(repo, "index")) == 2
    assert objects(repo, "snapshots") == []

    resumed = reopen(repo)
    kept = blobs_in_packs(resumed, pack_ids(resumed))
    before = pack_ids(resumed)
    puts = count_puts(monkeypatch, repo.store)
    snapshot_id, _ = Archiver(resumed).backup(source)

    assert 0 < len(data_keys(puts)) < full
    assert not blobs_in_packs(resumed, pack_ids(resumed) - before) & kept
    assert [k.rsplit("/", 1)[1] for k in objects(repo, "snapshots")] == [snapshot_id]
    restore_fresh(repo, snapshot_id, tmp_path / "restored")
    assert compare_trees(source, tmp_path / "restored") == []


def test_a_read_error_on_a_hard_linked_file_fails_the_backup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = new_repository(LocalStore(tmp_path / "bucket"))  # the store plays no part
    source = tmp_path / "source"
    source.mkdir()
    for i in range(64):  # one batch of files per worker task: the two names land in two
        (source / f"{i:03d}").write_bytes(b"x" * i)
    os.link(source / "000", source / "064")
    broken = (source / "000").stat().st_ino
    original = Archiver._chunk

    def chunk(self: Archiver, path: Path, st: os.stat_result) -> tuple[list[str], bool]:
        if st.st_ino == broken:
            raise OSError(errno.EIO, "injected read error", str(path))
        return original(self, path, st)

    monkeypatch.setattr(Archiver, "_chunk", chunk)
    archiver = Archiver(repo)
    outcome: list[BaseException | tuple[str, SnapshotDoc]] = []

    def run() -> None:
        try:
            outcome.append(archiver.backup(source))
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(3)  # a working backup of these 65 tiny files takes well under a second
    try:
        assert not worker.is_alive(), "the backup hangs"
        assert isinstance(outcome[0], OSError) and outcome[0].errno == errno.EIO
    finally:  # release a stuck worker so the test run can end
        for waiting in getattr(archiver, "_links", {}).values():
            if not waiting.done():
                waiting.set_exception(RuntimeError("released by the test"))
        worker.join(10)


def test_concurrent_chunk_writes_keep_file_metadata(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks = [random_bytes(100 * KIB, 60 + i) for i in range(3)]
    crafter = Crafter(repo)
    first = crafter.data(chunks[0])
    crafter.writer.flush()  # the first chunk alone in one pack, the others in the next
    rest = [crafter.data(c) for c in chunks[1:]]
    node = {
        "name": "f.bin",
        "type": "file",
        "mode": 0o640,
        "size": 300 * KIB,
        "mtime_ns": OLD_NS,
        "atime_ns": OLD_NS,
        "content": [first, *rest],
    }
    snapshot_id = crafter.snapshot(crafter.tree([node]))
    reopened = reopen(repo)
    late_pack = reopened.index[bytes.fromhex(rest[0])].pack
    assert reopened.index[bytes.fromhex(first)].pack != late_pack
    real_range, real_pwrite = reopened.store.get_range, os.pwrite

    def get_range(key: str, offset: int, length: int) -> bytes:
        if key.endswith(late_pack):
            time.sleep(0.2)  # the second pack arrives later ...
        return real_range(key, offset, length)

    def pwrite(fd: int, data: bytes, offset: int) -> int:
        if offset == 0:
            time.sleep(0.6)  # ... yet before the first chunk reaches the disk
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(reopened.store, "get_range", get_range)
    monkeypatch.setattr(os, "pwrite", pwrite)
    target = tmp_path / "target"
    Restorer(reopened, workers=4).restore(snapshot_id, target)
    monkeypatch.undo()

    assert (target / "f.bin").read_bytes() == b"".join(chunks)
    restored = (target / "f.bin").stat()
    assert (oct(restored.st_mode & 0o7777), restored.st_mtime_ns) == ("0o640", OLD_NS)


def test_volume_data_restores_what_another_mover_stored_later(
    store: ObjectStore, tmp_path: Path
) -> None:
    ours = RepositoryData(store, "volumes", PasswordKey(PASSWORD))
    theirs = RepositoryData(store, "volumes", PasswordKey(PASSWORD))  # another cluster's mover
    ours.backup(_tree(tmp_path / "ours", 1, b"ours"), None, {}, None)
    source = _tree(tmp_path / "theirs", 2, b"theirs")
    snapshot_id, _ = theirs.backup(source, None, {}, None)

    ours.restore(snapshot_id, tmp_path / "restored", None)

    assert compare_trees(source, tmp_path / "restored") == []
