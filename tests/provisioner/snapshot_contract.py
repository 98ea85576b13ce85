"""The snapshot half of the storage-backend contract: snapshots, revert, clones and
send/receive. Composed into `BackendConformance`, it runs on every backend."""

from __future__ import annotations

import errno
import io
from collections.abc import Callable

import pytest

from services.provisioner.adapters.base import (
    InsufficientCapacity,
    InvalidVolume,
    NotFound,
    StorageBackend,
    Unsupported,
)
from tests.provisioner.backend_contract import (
    CAPACITY,
    INVALID_IDS,
    ContractHooks,
    MiB,
    contents,
    fill,
    fs_free,
    root_of,
    supported,
    write,
)


class SnapshotContract(ContractHooks):
    """Taking, listing and deleting snapshots; reverting to one; cloning volumes and
    snapshots; sending and receiving snapshots."""

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
