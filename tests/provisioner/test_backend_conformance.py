"""Every storage backend honours the `StorageBackend` contract, on a real filesystem."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from services.provisioner.backends.base import (
    BackendUnavailable,
    InsufficientCapacity,
    InvalidVolume,
    StorageBackend,
)
from services.provisioner.backends.btrfs import BtrfsBackend, is_btrfs
from services.provisioner.backends.dirfs import DirBackend

MiB = 1 << 20
CAPACITY = 256 * MiB
KNOWN_CAPABILITIES = {"enforces_size", "snapshots", "clones"}
INVALID_IDS = ["", "Upper", "-lead", "a/b", "../escape", ".creating-x", "a_b", "x" * 129]


class BackendConformance:
    """The contract; subclasses provide `backend` and how an interrupted create looks."""

    @pytest.fixture
    def backend(self) -> StorageBackend:
        raise NotImplementedError

    def leave_interrupted_create(self, backend: StorageBackend, volume_id: str) -> Path:
        raise NotImplementedError

    def test_declares_only_known_capabilities(self, backend: StorageBackend) -> None:
        assert backend.capabilities <= KNOWN_CAPABILITIES
        assert backend.name == "conformance"

    def test_create_returns_a_writable_directory(self, backend: StorageBackend) -> None:
        info = backend.create_volume("pvc-a", 16 * MiB)
        assert info.volume_id == "pvc-a"
        assert info.size_bytes == 16 * MiB
        assert info.path.is_dir()
        assert info.path.stat().st_mode & 0o777 == 0o777  # any pod user may write
        (info.path / "data").write_bytes(b"payload")
        assert (info.path / "data").read_bytes() == b"payload"
        assert backend.get_volume("pvc-a") == info

    def test_create_is_idempotent(self, backend: StorageBackend) -> None:
        first = backend.create_volume("pvc-a", 16 * MiB)
        (first.path / "kept").write_text("still here")
        second = backend.create_volume("pvc-a", 16 * MiB)
        assert second == first
        assert (second.path / "kept").read_text() == "still here"

    def test_get_missing_volume_is_none(self, backend: StorageBackend) -> None:
        assert backend.get_volume("pvc-missing") is None

    def test_delete_removes_and_is_idempotent(self, backend: StorageBackend) -> None:
        info = backend.create_volume("pvc-a", 16 * MiB)
        (info.path / "file").write_bytes(b"x" * 1024)
        backend.delete_volume("pvc-a")
        assert backend.get_volume("pvc-a") is None
        assert not info.path.exists()
        backend.delete_volume("pvc-a")
        backend.delete_volume("pvc-never-existed")
        assert backend.get_volume("pvc-a") is None

    @pytest.mark.parametrize("volume_id", INVALID_IDS)
    def test_invalid_volume_ids_are_rejected(self, backend: StorageBackend, volume_id: str) -> None:
        calls: list[Callable[[], object]] = [
            lambda: backend.create_volume(volume_id, MiB),
            lambda: backend.get_volume(volume_id),
            lambda: backend.delete_volume(volume_id),
        ]
        for call in calls:
            with pytest.raises(InvalidVolume) as raised:
                call()
            assert repr(volume_id) in str(raised.value)

    def test_more_than_capacity_is_refused(self, backend: StorageBackend) -> None:
        with pytest.raises(InsufficientCapacity) as raised:
            backend.create_volume("pvc-big", CAPACITY + MiB)
        assert backend.name in str(raised.value)
        assert backend.get_volume("pvc-big") is None

    def test_capacity_accounts_for_existing_volumes(self, backend: StorageBackend) -> None:
        before = backend.free_bytes()
        assert before <= CAPACITY
        backend.create_volume("pvc-a", 64 * MiB)
        assert backend.free_bytes() <= before - 64 * MiB
        backend.create_volume("pvc-b", 64 * MiB)
        assert backend.free_bytes() <= before - 128 * MiB
        with pytest.raises(InsufficientCapacity):
            backend.create_volume("pvc-c", before - 64 * MiB)
        backend.delete_volume("pvc-a")
        backend.delete_volume("pvc-b")
        assert backend.free_bytes() >= before - MiB

    def test_interrupted_create_is_cleaned_up(self, backend: StorageBackend) -> None:
        leftover = self.leave_interrupted_create(backend, "pvc-a")
        (leftover / "stale").write_text("half-made")
        assert backend.get_volume("pvc-a") is None  # never looks finished
        info = backend.create_volume("pvc-a", 16 * MiB)
        assert not leftover.exists()
        assert list(info.path.iterdir()) == []
        assert backend.get_volume("pvc-a") == info

    def test_foreign_directories_in_the_root_are_ignored(self, backend: StorageBackend) -> None:
        assert isinstance(backend, DirBackend | BtrfsBackend)
        root = backend.root
        before = backend.free_bytes()
        (root / "Operator_Notes").mkdir()
        assert backend.free_bytes() == before
        info = backend.create_volume("pvc-a", MiB)
        assert backend.get_volume("pvc-a") == info

    def test_size_is_enforced_exactly_when_advertised(self, backend: StorageBackend) -> None:
        size = 16 * MiB
        info = backend.create_volume("pvc-small", size)
        chunk = os.urandom(MiB)
        written = 0
        error: OSError | None = None
        try:
            with (info.path / "fill").open("wb") as f:
                while written < 2 * size:
                    f.write(chunk)
                    f.flush()
                    os.fsync(f.fileno())
                    written += len(chunk)
        except OSError as exc:
            error = exc
        if "enforces_size" in backend.capabilities:
            assert error is not None and error.errno in (errno.EDQUOT, errno.ENOSPC)
            assert written <= size
        else:  # accounted, not enforced: the write goes through
            assert error is None and written == 2 * size


class TestDirBackend(BackendConformance):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> StorageBackend:
        return DirBackend("conformance", tmp_path, capacity_bytes=CAPACITY)

    def leave_interrupted_create(self, backend: StorageBackend, volume_id: str) -> Path:
        assert isinstance(backend, DirBackend)
        staging = backend.root / f".creating-{volume_id}"
        staging.mkdir()
        return staging

    def test_volume_without_size_file_was_never_finished(self, tmp_path: Path) -> None:
        backend = DirBackend("conformance", tmp_path, capacity_bytes=CAPACITY)
        (tmp_path / "pvc-a").mkdir()
        (tmp_path / "pvc-a" / "stale").write_text("crashed before the size file")
        assert backend.get_volume("pvc-a") is None
        info = backend.create_volume("pvc-a", MiB)
        assert list(info.path.iterdir()) == []

    def test_missing_root_is_unavailable(self, tmp_path: Path) -> None:
        missing = tmp_path / "nope"
        with pytest.raises(BackendUnavailable, match=str(missing)):
            DirBackend("conformance", missing)


class TestBtrfsBackend(BackendConformance):
    @pytest.fixture
    def backend(self, btrfs_root: Path) -> StorageBackend:
        return BtrfsBackend("conformance", btrfs_root, capacity_bytes=CAPACITY)

    def test_foreign_directories_in_the_root_are_ignored(self, backend: StorageBackend) -> None:
        super().test_foreign_directories_in_the_root_are_ignored(backend)

    def leave_interrupted_create(self, backend: StorageBackend, volume_id: str) -> Path:
        assert isinstance(backend, BtrfsBackend)
        staging = backend.root / f".creating-{volume_id}"
        subprocess.run(
            ["btrfs", "subvolume", "create", str(staging)], check=True, capture_output=True
        )
        return staging


def test_btrfs_backend_refuses_a_non_btrfs_directory(tmp_path: Path) -> None:
    assert not is_btrfs(tmp_path)
    with pytest.raises(BackendUnavailable) as raised:
        BtrfsBackend("conformance", tmp_path)
    assert str(tmp_path) in str(raised.value)
    assert "conformance" in str(raised.value)
