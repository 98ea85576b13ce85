"""Every storage backend honours the `StorageBackend` contract, on a real filesystem.

Each test runs on every backend: a call whose capability a backend lacks must fail with
`Unsupported`, so the capability-gated tests assert something either way.
"""

from __future__ import annotations

import errno
import io
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.provisioner.backends.base import (
    BackendUnavailable,
    InsufficientCapacity,
    InvalidVolume,
    NotFound,
    StorageBackend,
    Unsupported,
    VolumeExists,
)
from services.provisioner.backends.btrfs import BtrfsBackend, is_btrfs
from services.provisioner.backends.dirfs import DirBackend

MiB = 1 << 20
CAPACITY = 256 * MiB
KNOWN_CAPABILITIES = {
    "enforces_size",
    "expand",
    "snapshots",
    "clones",
    "instant_clones",
    "reflink",
    "revert",
    "import",
    "send_receive",
}
INVALID_IDS = ["", "Upper", "-lead", "a/b", "../escape", ".creating-x", "a_b", "x" * 129]
DIR_CAPABILITIES = {"expand", "snapshots", "clones", "revert", "import"}


def root_of(backend: StorageBackend) -> Path:
    assert isinstance(backend, DirBackend | BtrfsBackend)
    return backend.root


def supported(backend: StorageBackend, capability: str, attempt: Callable[[], object]) -> bool:
    """True when advertised; otherwise checks that `attempt` says it is unsupported."""
    if capability in backend.capabilities:
        return True
    with pytest.raises(Unsupported) as raised:
        attempt()
    assert "not supported" in str(raised.value)
    assert backend.name in str(raised.value)
    return False


def contents(path: Path) -> dict[str, tuple[int, bytes]]:
    """Every entry under `path`: permission bits and file bytes or link target."""
    found: dict[str, tuple[int, bytes]] = {}
    for entry in sorted(path.rglob("*")):
        st = entry.lstat()
        if entry.is_symlink():
            data = os.readlink(entry).encode()
        elif entry.is_file():
            data = entry.read_bytes()
        else:
            data = b""
        found[str(entry.relative_to(path))] = (st.st_mode & 0o7777, data)
    return found


def write(path: Path, size: int) -> None:
    with path.open("wb") as f:
        f.write(os.urandom(size))
        f.flush()
        os.fsync(f.fileno())


def fill(path: Path, limit: int) -> tuple[int, OSError | None]:
    """Write 1 MiB chunks until `limit` bytes or an error; returns bytes written, error."""
    written = 0
    chunk = os.urandom(MiB)
    try:
        with path.open("wb") as f:
            while written < limit:
                f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
                written += len(chunk)
    except OSError as exc:
        return written, exc
    return written, None


def fs_free(path: Path) -> int:
    os.sync()
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


class BackendConformance:
    """The contract; subclasses provide `backend`, how a tree (directory or subvolume) is
    made on it, a directory on another filesystem, and the capabilities they expect."""

    expected_capabilities: frozenset[str] = frozenset()

    @pytest.fixture
    def backend(self) -> StorageBackend:
        raise NotImplementedError

    @pytest.fixture
    def elsewhere(self) -> Path:
        """A directory on a filesystem other than the backend's."""
        raise NotImplementedError

    def make_tree(self, path: Path) -> Path:
        """What the backend keeps a volume in (a directory or a subvolume), at `path`."""
        raise NotImplementedError

    def leave_interrupted_create(self, backend: StorageBackend, volume_id: str) -> Path:
        return self.make_tree(root_of(backend) / f".creating-{volume_id}")

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

    def test_declares_exactly_its_capabilities(self, backend: StorageBackend) -> None:
        assert backend.capabilities == self.expected_capabilities

    @pytest.mark.parametrize("snapshot_id", INVALID_IDS)
    def test_invalid_snapshot_ids_are_rejected(
        self, backend: StorageBackend, snapshot_id: str
    ) -> None:
        backend.create_volume("pvc-a", MiB)
        calls: list[Callable[[], object]] = [
            lambda: backend.create_snapshot("pvc-a", snapshot_id),
            lambda: backend.get_snapshot("pvc-a", snapshot_id),
            lambda: backend.delete_snapshot("pvc-a", snapshot_id),
            lambda: backend.revert_to_snapshot("pvc-a", snapshot_id),
            lambda: backend.clone_volume("pvc-a", "pvc-b", MiB, snapshot_id),
        ]
        for call in calls:
            with pytest.raises(InvalidVolume) as raised:
                call()
            assert repr(snapshot_id) in str(raised.value)

    def test_missing_volumes_and_snapshots_are_not_found(self, backend: StorageBackend) -> None:
        calls: list[Callable[[], object]] = [
            lambda: backend.expand_volume("pvc-missing", MiB),
            lambda: backend.usage("pvc-missing"),
            lambda: backend.create_snapshot("pvc-missing", "snap-1"),
            lambda: backend.revert_to_snapshot("pvc-missing", "snap-1"),
            lambda: backend.clone_volume("pvc-missing", "pvc-b", MiB),
            lambda: backend.clone_volume("pvc-missing", "pvc-b", MiB, "snap-1"),
        ]
        for call in calls:
            with pytest.raises(NotFound) as raised:
                call()
            assert "pvc-missing" in str(raised.value) and backend.name in str(raised.value)
        backend.create_volume("pvc-a", MiB)
        with pytest.raises(NotFound, match="snap-1"):
            backend.revert_to_snapshot("pvc-a", "snap-1")
        assert backend.list_snapshots("pvc-missing") == []

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

    def test_snapshot_is_a_frozen_copy(self, backend: StorageBackend) -> None:
        info = backend.create_volume("pvc-a", 16 * MiB)
        if not supported(backend, "snapshots", lambda: backend.create_snapshot("pvc-a", "s1")):
            return
        (info.path / "kept").write_text("v1")
        (info.path / "removed").write_text("soon gone")
        free = backend.free_bytes()
        snap = backend.create_snapshot("pvc-a", "snap-1")
        assert (snap.volume_id, snap.snapshot_id, snap.size_bytes) == ("pvc-a", "snap-1", 16 * MiB)
        taken = contents(snap.path)
        assert taken == contents(info.path)
        (info.path / "kept").write_text("v2")
        (info.path / "removed").unlink()
        (info.path / "added").write_text("new")
        assert contents(snap.path) == taken
        assert backend.get_snapshot("pvc-a", "snap-1") == snap
        # Snapshots are neither volumes nor counted against capacity.
        assert backend.get_volume("snap-1") is None
        assert not str(snap.path).startswith(str(info.path))
        assert snap.path.name == "snap-1" and snap.path.parent.parent.name.startswith(".")
        assert backend.free_bytes() == free
        if "enforces_size" in backend.capabilities:  # enforced means read-only too
            with pytest.raises(OSError) as raised:
                (snap.path / "kept").write_text("changed")
            assert raised.value.errno == errno.EROFS

    def test_snapshot_calls_are_idempotent(self, backend: StorageBackend) -> None:
        backend.create_volume("pvc-a", 16 * MiB)
        if not supported(backend, "snapshots", lambda: backend.list_snapshots("pvc-a")):
            return
        first = backend.create_snapshot("pvc-a", "snap-1")
        assert backend.create_snapshot("pvc-a", "snap-1") == first
        second = backend.create_snapshot("pvc-a", "snap-2")
        assert backend.list_snapshots("pvc-a") == [first, second]  # oldest first
        backend.delete_snapshot("pvc-a", "snap-1")
        assert not first.path.exists()
        backend.delete_snapshot("pvc-a", "snap-1")
        backend.delete_snapshot("pvc-a", "snap-never")
        backend.delete_snapshot("pvc-never", "snap-never")
        assert backend.get_snapshot("pvc-a", "snap-1") is None
        assert backend.list_snapshots("pvc-a") == [second]

    def test_interrupted_snapshot_is_cleaned_up(self, backend: StorageBackend) -> None:
        info = backend.create_volume("pvc-a", 16 * MiB)
        (info.path / "data").write_text("current")
        if not supported(backend, "snapshots", lambda: backend.create_snapshot("pvc-a", "s1")):
            return
        area = root_of(backend) / ".snapshots" / "pvc-a"
        area.mkdir(parents=True)
        leftover = self.make_tree(area / "snap-1")
        (leftover / "stale").write_text("half-made")
        assert backend.get_snapshot("pvc-a", "snap-1") is None
        assert backend.list_snapshots("pvc-a") == []
        snap = backend.create_snapshot("pvc-a", "snap-1")
        assert contents(snap.path) == contents(info.path)

    def test_snapshots_outlive_their_volume(self, backend: StorageBackend) -> None:
        info = backend.create_volume("pvc-a", 16 * MiB)
        (info.path / "data").write_text("kept")
        if not supported(backend, "snapshots", lambda: backend.create_snapshot("pvc-a", "s1")):
            return
        snap = backend.create_snapshot("pvc-a", "snap-1")
        backend.delete_volume("pvc-a")
        assert backend.list_snapshots("pvc-a") == [snap]
        if "clones" in backend.capabilities:
            clone = backend.clone_volume("pvc-a", "pvc-b", 16 * MiB, "snap-1")
            assert (clone.path / "data").read_text() == "kept"
        backend.delete_snapshot("pvc-a", "snap-1")
        assert backend.list_snapshots("pvc-a") == []

    def test_revert_restores_content_in_place(self, backend: StorageBackend) -> None:
        info = backend.create_volume("pvc-a", 16 * MiB)
        (info.path / "data").write_text("old")
        if not supported(backend, "revert", lambda: backend.revert_to_snapshot("pvc-a", "s1")):
            return
        snap = backend.create_snapshot("pvc-a", "snap-1")
        old = contents(info.path)
        (info.path / "data").write_text("new")
        (info.path / "extra").write_text("added after")
        expanded = backend.expand_volume("pvc-a", 24 * MiB)
        leftover = self.make_tree(root_of(backend) / ".reverting-pvc-a")  # an earlier crash
        (leftover / "stale").write_text("half-made")
        reverted = backend.revert_to_snapshot("pvc-a", "snap-1")
        assert reverted == expanded == backend.get_volume("pvc-a")  # same path, same size
        assert contents(info.path) == old
        assert not leftover.exists()
        assert contents(snap.path) == old  # the snapshot stays usable
        (info.path / "data").write_text("writable again")
        assert backend.revert_to_snapshot("pvc-a", "snap-1") == reverted  # repeatable
        assert (info.path / "data").read_text() == "old"
        if "enforces_size" in backend.capabilities:  # the limit survived the swap
            written, error = fill(info.path / "fill", 48 * MiB)
            assert error is not None and written <= 24 * MiB

    def test_clone_of_a_live_volume_is_independent(self, backend: StorageBackend) -> None:
        source = backend.create_volume("pvc-a", 16 * MiB)
        attempt = lambda: backend.clone_volume("pvc-a", "pvc-b", 16 * MiB)  # noqa: E731
        if not supported(backend, "clones", attempt):
            return
        write(source.path / "data", MiB)
        (source.path / "sub").mkdir()
        (source.path / "sub" / "note").write_text("hello")
        clone = backend.clone_volume("pvc-a", "pvc-b", 24 * MiB)
        assert clone == backend.get_volume("pvc-b")
        assert clone.size_bytes == 24 * MiB and clone.path != source.path
        assert clone.path.stat().st_mode & 0o777 == 0o777
        assert contents(clone.path) == contents(source.path)
        assert backend.clone_volume("pvc-a", "pvc-b", 24 * MiB) == clone  # idempotent
        copied = contents(clone.path)
        (clone.path / "sub" / "note").write_text("changed in the clone")
        assert (source.path / "sub" / "note").read_text() == "hello"
        (clone.path / "sub" / "note").write_text("hello")
        (source.path / "data").write_text("changed in the source")
        assert contents(clone.path) == copied
        backend.delete_volume("pvc-a")
        assert contents(clone.path) == copied
        if "enforces_size" in backend.capabilities:
            written, error = fill(clone.path / "fill", 48 * MiB)
            assert error is not None and written <= 24 * MiB

    def test_clone_of_a_snapshot_is_independent(self, backend: StorageBackend) -> None:
        source = backend.create_volume("pvc-a", 16 * MiB)
        (source.path / "data").write_text("at snapshot time")
        attempt = lambda: backend.clone_volume("pvc-a", "pvc-b", 16 * MiB, "s1")  # noqa: E731
        if not supported(backend, "clones", attempt):
            return
        snap = backend.create_snapshot("pvc-a", "snap-1")
        (source.path / "data").write_text("later")
        clone = backend.clone_volume("pvc-a", "pvc-b", 16 * MiB, "snap-1")
        assert (clone.path / "data").read_text() == "at snapshot time"
        (clone.path / "data").write_text("the clone is writable")
        assert contents(snap.path)["data"][1] == b"at snapshot time"
        backend.delete_snapshot("pvc-a", "snap-1")
        backend.delete_volume("pvc-a")
        assert (clone.path / "data").read_text() == "the clone is writable"
        assert backend.get_volume("pvc-b") == clone

    def test_clone_must_hold_its_source(self, backend: StorageBackend) -> None:
        backend.create_volume("pvc-a", 32 * MiB)
        attempt = lambda: backend.clone_volume("pvc-a", "pvc-b", 16 * MiB)  # noqa: E731
        if not supported(backend, "clones", attempt):
            return
        with pytest.raises(InvalidVolume) as raised:
            backend.clone_volume("pvc-a", "pvc-b", 16 * MiB)
        assert str(32 * MiB) in str(raised.value) and str(16 * MiB) in str(raised.value)
        with pytest.raises(InsufficientCapacity, match="pvc-b"):
            backend.clone_volume("pvc-a", "pvc-b", CAPACITY)
        assert backend.get_volume("pvc-b") is None
        assert not (root_of(backend) / ".creating-pvc-b").exists()

    def test_clones_share_blocks_exactly_when_advertised(self, backend: StorageBackend) -> None:
        source = backend.create_volume("pvc-a", 64 * MiB)
        attempt = lambda: backend.clone_volume("pvc-a", "pvc-b", 64 * MiB)  # noqa: E731
        if not supported(backend, "clones", attempt):
            return
        write(source.path / "data", 32 * MiB)
        before = fs_free(source.path)
        clone = backend.clone_volume("pvc-a", "pvc-b", 64 * MiB)
        snap = backend.create_snapshot("pvc-b", "snap-1")
        spent = before - fs_free(clone.path)
        assert (snap.path / "data").read_bytes() == (source.path / "data").read_bytes()
        shares = bool(backend.capabilities & {"instant_clones", "reflink"})
        # Only sharing is measured: a full copy's cost would be read off a filesystem that
        # other processes may be freeing space on at the same time.
        assert spent < 8 * MiB if shares else (clone.path / "data").stat().st_size == 32 * MiB

    def test_interrupted_clone_is_cleaned_up(self, backend: StorageBackend) -> None:
        source = backend.create_volume("pvc-a", 16 * MiB)
        (source.path / "data").write_text("source")
        attempt = lambda: backend.clone_volume("pvc-a", "pvc-b", 16 * MiB)  # noqa: E731
        if not supported(backend, "clones", attempt):
            return
        leftover = self.leave_interrupted_create(backend, "pvc-b")
        (leftover / "stale").write_text("half-made")
        assert backend.get_volume("pvc-b") is None
        clone = backend.clone_volume("pvc-a", "pvc-b", 16 * MiB)
        assert not leftover.exists()
        assert contents(clone.path) == contents(source.path)

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

    def test_send_and_receive_a_snapshot(self, backend: StorageBackend) -> None:
        source = backend.create_volume("pvc-a", 16 * MiB)
        write(source.path / "data", MiB)
        (source.path / "note").write_text("sent")
        backend.create_snapshot("pvc-a", "snap-1")
        stream = io.BytesIO()
        attempt = lambda: backend.send_snapshot("pvc-a", "snap-1", stream)  # noqa: E731
        if not supported(backend, "send_receive", attempt):
            with pytest.raises(Unsupported, match="not supported"):
                backend.receive_snapshot("pvc-copy", io.BytesIO(b"btrfs-stream"))
            return
        assert backend.send_snapshot("pvc-a", "snap-1", stream) == len(stream.getvalue())
        stream.seek(0)
        received = backend.receive_snapshot("pvc-copy", stream)
        assert (received.volume_id, received.snapshot_id) == ("pvc-copy", "snap-1")
        assert backend.list_snapshots("pvc-copy") == [received]
        stream.seek(0)
        assert backend.receive_snapshot("pvc-copy", stream) == received  # idempotent
        copy = backend.clone_volume("pvc-copy", "pvc-b", 16 * MiB, "snap-1")
        assert contents(copy.path) == contents(source.path)
        with pytest.raises(InvalidVolume, match="not a btrfs send stream"):
            backend.receive_snapshot("pvc-copy", io.BytesIO(b"x" * 64))


class DirHooks(BackendConformance):
    def make_tree(self, path: Path) -> Path:
        path.mkdir()
        return path


class TestDirBackend(DirHooks):
    expected_capabilities = frozenset(DIR_CAPABILITIES)  # ext4 or tmpfs: no reflink

    @pytest.fixture
    def backend(self, tmp_path: Path) -> StorageBackend:
        assert not is_btrfs(tmp_path)
        return DirBackend("conformance", tmp_path, capacity_bytes=CAPACITY)

    @pytest.fixture
    def elsewhere(self, tmp_path: Path) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(dir="/dev/shm") as other:
            assert os.stat(other).st_dev != os.stat(tmp_path).st_dev
            yield Path(other)

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


class TestDirBackendOnReflinkFilesystem(DirHooks):
    """The dir backend on a filesystem that can reflink (here btrfs, quotas off)."""

    expected_capabilities = frozenset(DIR_CAPABILITIES | {"reflink"})

    @pytest.fixture
    def backend(self, btrfs_root: Path) -> StorageBackend:
        return DirBackend("conformance", btrfs_root, capacity_bytes=CAPACITY)

    @pytest.fixture
    def elsewhere(self, tmp_path: Path) -> Path:
        (tmp_path / "elsewhere").mkdir()
        return tmp_path / "elsewhere"


class TestBtrfsBackend(BackendConformance):
    expected_capabilities = frozenset(
        {
            "enforces_size",
            "expand",
            "snapshots",
            "clones",
            "instant_clones",
            "revert",
            "import",
            "send_receive",
        }
    )

    @pytest.fixture
    def backend(self, btrfs_root: Path) -> StorageBackend:
        return BtrfsBackend("conformance", btrfs_root, capacity_bytes=CAPACITY)

    @pytest.fixture
    def elsewhere(self, tmp_path: Path) -> Path:
        (tmp_path / "elsewhere").mkdir()
        return tmp_path / "elsewhere"

    def make_tree(self, path: Path) -> Path:
        subprocess.run(["btrfs", "subvolume", "create", str(path)], check=True, capture_output=True)
        return path

    def test_import_refuses_a_plain_directory(self, backend: StorageBackend) -> None:
        plain = root_of(backend) / "Plain_Dir"
        plain.mkdir()
        with pytest.raises(InvalidVolume, match="not a btrfs subvolume") as raised:
            backend.import_volume("pvc-a", plain)
        assert str(plain) in str(raised.value)


def test_btrfs_backend_refuses_a_non_btrfs_directory(tmp_path: Path) -> None:
    assert not is_btrfs(tmp_path)
    with pytest.raises(BackendUnavailable) as raised:
        BtrfsBackend("conformance", tmp_path)
    assert str(tmp_path) in str(raised.value)
    assert "conformance" in str(raised.value)
