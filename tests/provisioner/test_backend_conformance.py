"""Every storage backend honours the `StorageBackend` contract, on a real filesystem.

Each test runs on every backend: a call whose capability a backend lacks must fail with
`Unsupported`, so the capability-gated tests assert something either way.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# The contract's assertions live outside test modules: have pytest explain their failures.
pytest.register_assert_rewrite(
    "tests.provisioner.backend_contract",
    "tests.provisioner.snapshot_contract",
    "tests.provisioner.volume_contract",
)

from services.provisioner.adapters.base import (  # noqa: E402
    BackendUnavailable,
    InvalidVolume,
    StorageBackend,
)
from services.provisioner.adapters.btrfs import BtrfsBackend, is_btrfs  # noqa: E402
from services.provisioner.adapters.dirfs import DirBackend  # noqa: E402
from tests.provisioner.backend_contract import CAPACITY, MiB, root_of  # noqa: E402
from tests.provisioner.snapshot_contract import SnapshotContract  # noqa: E402
from tests.provisioner.volume_contract import VolumeContract  # noqa: E402

DIR_CAPABILITIES = {"expand", "snapshots", "clones", "revert", "import"}


class BackendConformance(VolumeContract, SnapshotContract):
    """The contract; subclasses provide `backend`, how a tree (directory or subvolume) is
    made on it, a directory on another filesystem, and the capabilities they expect."""


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
            "compression",
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
