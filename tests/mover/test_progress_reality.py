"""Progress that reflects reality: a large file moves the count chunk by chunk while it is
read (not only when done), and an incremental backup reports the bytes it skipped apart
from those it read, its rate counting only what was read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.mover.repo import progress as progress_module
from services.mover.repo.progress import Progress
from services.mover.volumes import RepositoryData
from vessel.objectstore.local import LocalStore
from vessel.sealed.providers.password import PasswordKey


def test_a_large_file_is_counted_while_it_is_read_and_unchanged_bytes_are_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress_module, "INTERVAL", 0.001)
    data = RepositoryData(LocalStore(tmp_path / "bucket"), "repository", PasswordKey("pw"))
    source = tmp_path / "volume"
    source.mkdir()
    (source / "big.bin").write_bytes(os.urandom(48 << 20))
    (source / "small.txt").write_bytes(b"hello" * 100)
    seen: list[tuple[int, int, int]] = []

    def report(p: Progress) -> None:
        seen.append((p.files, p.bytes, p.skipped))

    first, doc = data.backup(source, None, {}, report)
    size = (48 << 20) + 500
    during_big = {b for f, b, _ in seen if 0 < b < (48 << 20) and f <= 1}
    assert len(during_big) >= 2, seen[:20]  # the big file moved the count more than once
    assert seen[-1] == (2, size, 0) and doc.bytes == size

    (source / "small.txt").write_bytes(b"changed" * 100)
    seen.clear()
    progress_seen: list[Progress] = []
    data.backup(source, first, {}, lambda p: progress_seen.append(p) or report(p), source)
    files, processed, skipped = seen[-1]
    assert (files, processed) == (2, (48 << 20) + 700)
    assert skipped == 48 << 20  # the big file was unchanged: counted, never read
    final = progress_seen[-1]
    assert final.rate < 1 << 20  # 700 bytes read; with the skipped 48 MiB it would be far more


def test_a_backup_knows_its_totals_early(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Measured beside the run (no file opened), so a report long before the end carries
    the bytes and files to come, and the percent and ETA follow; an incremental starts
    from its parent's totals."""
    monkeypatch.setattr(progress_module, "INTERVAL", 0.001)
    data = RepositoryData(LocalStore(tmp_path / "bucket"), "repository", PasswordKey("pw"))
    source = tmp_path / "volume"
    (source / "deep" / "er").mkdir(parents=True)
    for n in range(4):
        (source / "deep" / "er" / f"part-{n}.bin").write_bytes(os.urandom(16 << 20))
    (source / "empty").write_bytes(b"")
    size = 64 << 20
    seen: list[tuple[int, int | None, int | None]] = []

    def report(p: Progress) -> None:
        seen.append((p.bytes, p.total, p.total_files))

    first, _ = data.backup(source, None, {}, report)
    early = [(done, total, files) for done, total, files in seen if done < size // 2 and total]
    assert early and early[0][1:] == (size, 5), seen[:5]
    assert seen[-1] == (size, size, 5)

    (source / "new.txt").write_bytes(b"x" * 1000)
    seen.clear()
    data.backup(source, first, {}, report, source)
    assert seen[0][1:] == (size, 5) or seen[0][1:] == (size + 1000, 6)  # parent's, or measured
    assert seen[-1] == (size + 1000, size + 1000, 6)
