"""The volume half of the storage-backend contract: volumes, capacity, expansion, usage
and import. Composed into `BackendConformance`, it runs on every backend."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from services.provisioner.adapters.base import (
    InsufficientCapacity,
    InvalidVolume,
    StorageBackend,
    VolumeExists,
)
from services.provisioner.adapters.btrfs import BtrfsBackend
from services.provisioner.adapters.dirfs import DirBackend
from tests.provisioner.backend_contract import (
    CAPACITY,
    INVALID_IDS,
    KNOWN_CAPABILITIES,
    ContractHooks,
    MiB,
    contents,
    fill,
    root_of,
    supported,
    write,
)


class VolumeContract(ContractHooks):
    """Creating, finding and deleting volumes; capacity and size limits; expansion and usage;
    adopting existing trees."""

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

    def test_a_compressed_volume_holds_more_than_its_size(self, backend: StorageBackend) -> None:
        info = backend.create_volume("pvc-z", 16 * MiB)
        if not supported(backend, "compression", lambda: backend.compress_volume("pvc-z")):
            return
        backend.compress_volume("pvc-z")  # repeated: harmless
        text = b"".join(b"%08d vessel keeps what repeats small\n" % i for i in range(30000))
        chunk = text[:MiB]
        written, error = fill(info.path / "log", 48 * MiB, chunk)  # three times its size
        assert error is None and written == 48 * MiB
        assert (info.path / "log").read_bytes()[: len(chunk)] == chunk
        if "enforces_size" in backend.capabilities:  # not a limit that went away
            assert fill(info.path / "noise", 32 * MiB)[1] is not None

    def test_declares_exactly_its_capabilities(self, backend: StorageBackend) -> None:
        assert backend.capabilities == self.expected_capabilities

    def test_expand_lets_more_data_in(self, backend: StorageBackend) -> None:
        info = backend.create_volume("pvc-a", 16 * MiB)
        if not supported(backend, "expand", lambda: backend.expand_volume("pvc-a", 32 * MiB)):
            return
        enforced = "enforces_size" in backend.capabilities
        written, error = fill(info.path / "first", 24 * MiB)
        assert (error is not None) == enforced
        assert written <= 16 * MiB if enforced else written == 24 * MiB
        expanded = backend.expand_volume("pvc-a", 64 * MiB)
        assert expanded == backend.get_volume("pvc-a")
        assert expanded.size_bytes == 64 * MiB and expanded.path == info.path
        assert backend.expand_volume("pvc-a", 64 * MiB) == expanded  # idempotent
        written, error = fill(info.path / "second", 24 * MiB)
        assert error is None and written == 24 * MiB
        if enforced:
            assert fill(info.path / "third", 64 * MiB)[1] is not None

    def test_shrinking_is_refused(self, backend: StorageBackend) -> None:
        backend.create_volume("pvc-a", 32 * MiB)
        if not supported(backend, "expand", lambda: backend.expand_volume("pvc-a", 16 * MiB)):
            return
        with pytest.raises(InvalidVolume) as raised:
            backend.expand_volume("pvc-a", 16 * MiB)
        message = str(raised.value)
        assert str(32 * MiB) in message and str(16 * MiB) in message and "pvc-a" in message
        assert backend.name in message
        info = backend.get_volume("pvc-a")
        assert info is not None and info.size_bytes == 32 * MiB

    def test_expanding_past_capacity_is_refused(self, backend: StorageBackend) -> None:
        backend.create_volume("pvc-a", 16 * MiB)
        if not supported(backend, "expand", lambda: backend.expand_volume("pvc-a", CAPACITY)):
            return
        with pytest.raises(InsufficientCapacity, match="pvc-a"):
            backend.expand_volume("pvc-a", CAPACITY + MiB)
        info = backend.get_volume("pvc-a")
        assert info is not None and info.size_bytes == 16 * MiB

    def test_usage_grows_with_data(self, backend: StorageBackend) -> None:
        info = backend.create_volume("pvc-a", 64 * MiB)
        before = backend.usage("pvc-a")
        assert before.size_bytes == 64 * MiB and before.used_bytes < MiB
        write(info.path / "data", 8 * MiB)
        after = backend.usage("pvc-a")
        assert 8 * MiB <= after.used_bytes - before.used_bytes <= 9 * MiB
        assert after.size_bytes == 64 * MiB

    def test_import_adopts_without_copying(self, backend: StorageBackend) -> None:
        tree = self.make_tree(root_of(backend) / "Legacy_Data")
        write(tree / "payload", MiB)
        (tree / "sub").mkdir()
        (tree / "sub" / "note").write_text("hello")
        inode = (tree / "payload").stat().st_ino
        before = contents(tree)
        attempt = lambda: backend.import_volume("pvc-a", tree, 32 * MiB)  # noqa: E731
        if not supported(backend, "import", attempt):
            return
        info = backend.import_volume("pvc-a", tree, 32 * MiB)
        assert info == backend.get_volume("pvc-a")
        assert info.path == root_of(backend) / "pvc-a" and info.size_bytes == 32 * MiB
        assert not tree.exists()
        assert (info.path / "payload").stat().st_ino == inode  # moved, not copied
        assert contents(info.path) == before
        assert backend.usage("pvc-a").used_bytes >= MiB
        if "enforces_size" in backend.capabilities:
            written, error = fill(info.path / "fill", 48 * MiB)
            assert error is not None and written <= 32 * MiB
        unsized = self.make_tree(root_of(backend) / "Unsized_Data")
        write(unsized / "payload", 2 * MiB)
        adopted = backend.import_volume("pvc-b", unsized)
        assert adopted.size_bytes >= 2 * MiB  # what it holds

    def test_import_refuses_a_taken_id(self, backend: StorageBackend) -> None:
        backend.create_volume("pvc-a", MiB)
        tree = self.make_tree(root_of(backend) / "Legacy_Data")
        (tree / "data").write_text("keep me")
        attempt = lambda: backend.import_volume("pvc-a", tree)  # noqa: E731
        if not supported(backend, "import", attempt):
            return
        with pytest.raises(VolumeExists) as raised:
            backend.import_volume("pvc-a", tree)
        assert "'pvc-a'" in str(raised.value) and backend.name in str(raised.value)
        assert (tree / "data").read_text() == "keep me"

    def test_import_refuses_paths_it_cannot_adopt(
        self, backend: StorageBackend, elsewhere: Path
    ) -> None:
        (elsewhere / "data").write_text("keep me")
        attempt = lambda: backend.import_volume("pvc-a", elsewhere)  # noqa: E731
        if not supported(backend, "import", attempt):
            return
        volume = backend.create_volume("pvc-b", MiB)
        refused = [elsewhere, volume.path, root_of(backend), root_of(backend) / "Missing"]
        if "snapshots" in backend.capabilities:
            refused.append(backend.create_snapshot("pvc-b", "snap-1").path)
        for path in refused:
            with pytest.raises(InvalidVolume) as raised:
                backend.import_volume("pvc-a", path)
            assert str(path) in str(raised.value) and backend.name in str(raised.value)
        assert (elsewhere / "data").read_text() == "keep me"
        assert backend.get_volume("pvc-a") is None
        assert backend.get_volume("pvc-b") == volume
