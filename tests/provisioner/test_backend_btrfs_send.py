"""btrfs send/receive between two filesystems: full, then incremental, byte for byte."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.provisioner.adapters.base import (
    BackendError,
    InvalidVolume,
    NotFound,
    VolumeExists,
)
from services.provisioner.adapters.btrfs import BtrfsBackend
from tests.support import require
from vessel_dev.rig.btrfs import LoopBtrfs, btrfs_available

MiB = 1 << 20


@pytest.fixture
def second_btrfs_root(tmp_path: Path) -> Iterator[Path]:
    """Another loop-mounted btrfs, the receiving site."""
    require(btrfs_available())
    fs = LoopBtrfs(tmp_path / "second.img", tmp_path / "second", size_bytes=512 << 20)
    fs.start()
    try:
        yield fs.mountpoint
    finally:
        fs.stop()


@pytest.fixture
def sites(btrfs_root: Path, second_btrfs_root: Path) -> tuple[BtrfsBackend, BtrfsBackend]:
    return BtrfsBackend("site-a", btrfs_root), BtrfsBackend("site-b", second_btrfs_root)


def tree(path: Path) -> dict[str, tuple[int, int, str, bytes]]:
    """Each entry: mode, link count, link target and content; the whole of what a copy keeps."""
    found = {}
    for entry in sorted(path.rglob("*")):
        st = entry.lstat()
        target = os.readlink(entry) if entry.is_symlink() else ""
        data = entry.read_bytes() if entry.is_file() and not entry.is_symlink() else b""
        found[str(entry.relative_to(path))] = (st.st_mode, st.st_nlink, target, data)
    return found


def send(backend: BtrfsBackend, snapshot_id: str, out: Path, parent: str | None = None) -> int:
    with out.open("wb") as f:
        return backend.send_snapshot("pvc-a", snapshot_id, f, parent)


def test_full_then_incremental_send_receive(
    sites: tuple[BtrfsBackend, BtrfsBackend], tmp_path: Path
) -> None:
    a, b = sites
    volume = a.create_volume("pvc-a", 64 * MiB)
    (volume.path / "big").write_bytes(os.urandom(4 * MiB))
    (volume.path / "private").write_text("secret")
    (volume.path / "private").chmod(0o640)
    os.link(volume.path / "big", volume.path / "big-link")
    (volume.path / "link").symlink_to("private")
    (volume.path / "dir" / "deeper").mkdir(parents=True)
    (volume.path / "dir" / "deeper" / "note").write_text("first")
    with (volume.path / "sparse").open("wb") as f:
        f.truncate(32 * MiB)
    a.create_snapshot("pvc-a", "snap-1")

    full = send(a, "snap-1", tmp_path / "full.stream")
    with (tmp_path / "full.stream").open("rb") as f:
        first = b.receive_snapshot("pvc-replica", f, size_bytes=64 * MiB)
    assert (first.snapshot_id, first.size_bytes) == ("snap-1", 64 * MiB)
    assert tree(first.path) == tree(volume.path)
    with pytest.raises(OSError) as raised:
        (first.path / "private").write_text("changed")
    assert raised.value.errno == errno.EROFS

    (volume.path / "dir" / "deeper" / "note").write_text("second")
    (volume.path / "private").unlink()
    (volume.path / "added").write_bytes(os.urandom(64 << 10))
    a.create_snapshot("pvc-a", "snap-2")
    incremental = send(a, "snap-2", tmp_path / "incremental.stream", parent="snap-1")
    assert incremental < 512 << 10 < 4 * MiB < full  # only what changed
    with (tmp_path / "incremental.stream").open("rb") as f:
        second = b.receive_snapshot("pvc-replica", f)
    assert tree(second.path) == tree(volume.path)
    assert tree(first.path) != tree(second.path)
    assert second.size_bytes >= 4 * MiB  # without a size given: the data it references
    with (tmp_path / "incremental.stream").open("rb") as f:
        assert b.receive_snapshot("pvc-replica", f) == second  # received before
    assert b.list_snapshots("pvc-replica") == [first, second]

    # Promote: a writable volume from the received snapshot, independent of it.
    restored = b.clone_volume("pvc-replica", "pvc-restored", 64 * MiB, "snap-2")
    assert tree(restored.path) == tree(volume.path)
    b.delete_snapshot("pvc-replica", "snap-2")
    b.delete_snapshot("pvc-replica", "snap-1")
    (restored.path / "added").write_text("writable")
    assert (restored.path / "dir" / "deeper" / "note").read_text() == "second"
    assert b.get_volume("pvc-restored") == restored


def test_incremental_without_its_parent_fails_and_leaves_nothing(
    sites: tuple[BtrfsBackend, BtrfsBackend], tmp_path: Path
) -> None:
    a, b = sites
    volume = a.create_volume("pvc-a", 16 * MiB)
    (volume.path / "data").write_bytes(os.urandom(MiB))
    a.create_snapshot("pvc-a", "snap-1")
    a.create_snapshot("pvc-a", "snap-2")
    send(a, "snap-2", tmp_path / "incremental.stream", parent="snap-1")
    with (tmp_path / "incremental.stream").open("rb") as f, pytest.raises(BackendError) as raised:
        b.receive_snapshot("pvc-replica", f)
    assert "site-b" in str(raised.value) and "pvc-replica" in str(raised.value)
    assert b.list_snapshots("pvc-replica") == []


def test_interrupted_receive_is_cleaned_up_by_the_next(
    sites: tuple[BtrfsBackend, BtrfsBackend], tmp_path: Path
) -> None:
    a, b = sites
    volume = a.create_volume("pvc-a", 16 * MiB)
    (volume.path / "data").write_bytes(os.urandom(2 * MiB))
    a.create_snapshot("pvc-a", "snap-1")
    stream = tmp_path / "full.stream"
    send(a, "snap-1", stream)
    cut = tmp_path / "cut.stream"
    cut.write_bytes(stream.read_bytes()[: stream.stat().st_size // 2])
    with cut.open("rb") as f, pytest.raises(BackendError):
        b.receive_snapshot("pvc-replica", f)
    assert b.get_snapshot("pvc-replica", "snap-1") is None
    with stream.open("rb") as f:
        received = b.receive_snapshot("pvc-replica", f)
    assert tree(received.path) == tree(volume.path)


def test_send_names_missing_snapshots(
    sites: tuple[BtrfsBackend, BtrfsBackend], tmp_path: Path
) -> None:
    a, _ = sites
    a.create_volume("pvc-a", 16 * MiB)
    a.create_snapshot("pvc-a", "snap-1")
    with pytest.raises(NotFound, match="snap-missing"):
        send(a, "snap-missing", tmp_path / "x.stream")
    with pytest.raises(NotFound, match="parent-missing"):
        send(a, "snap-1", tmp_path / "x.stream", parent="parent-missing")


def test_import_refuses_a_subvolume_of_another_filesystem(
    sites: tuple[BtrfsBackend, BtrfsBackend],
) -> None:
    a, b = sites
    foreign = b.root / "Foreign_Subvolume"
    subprocess.run(["btrfs", "subvolume", "create", str(foreign)], check=True, capture_output=True)
    (foreign / "data").write_text("stays")
    with pytest.raises(InvalidVolume, match="not on the filesystem") as raised:
        a.import_volume("pvc-a", foreign)
    assert str(foreign) in str(raised.value) and "site-a" in str(raised.value)
    assert (foreign / "data").read_text() == "stays"
    assert a.get_volume("pvc-a") is None


def test_receive_refuses_a_different_snapshot_under_a_taken_name(
    sites: tuple[BtrfsBackend, BtrfsBackend], tmp_path: Path
) -> None:
    a, b = sites
    for volume_id in ("pvc-a", "pvc-other"):
        a.create_volume(volume_id, 16 * MiB)
        a.create_snapshot(volume_id, "snap-1")
    send(a, "snap-1", tmp_path / "a.stream")
    with (tmp_path / "other.stream").open("wb") as f:
        a.send_snapshot("pvc-other", "snap-1", f)
    with (tmp_path / "a.stream").open("rb") as f:
        kept = b.receive_snapshot("pvc-replica", f)
    with (tmp_path / "other.stream").open("rb") as f, pytest.raises(VolumeExists) as raised:
        b.receive_snapshot("pvc-replica", f)
    assert "snap-1" in str(raised.value) and "pvc-replica" in str(raised.value)
    assert b.list_snapshots("pvc-replica") == [kept]
