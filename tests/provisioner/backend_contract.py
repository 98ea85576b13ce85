"""Shared pieces of the storage-backend conformance suite: limits, helpers and hooks.

The contract's tests live in `volume_contract` and `snapshot_contract`; the per-backend
subclasses that pytest collects live in `test_backend_conformance`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from services.provisioner.adapters.base import StorageBackend, Unsupported
from services.provisioner.adapters.btrfs import BtrfsBackend
from services.provisioner.adapters.dirfs import DirBackend

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
    "compression",
}
INVALID_IDS = ["", "Upper", "-lead", "a/b", "../escape", ".creating-x", "a_b", "x" * 129]


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


def fill(path: Path, limit: int, chunk: bytes | None = None) -> tuple[int, OSError | None]:
    """Write 1 MiB chunks (random unless given) until `limit` bytes or an error; returns
    bytes written, error."""
    written = 0
    chunk = chunk or os.urandom(MiB)
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


class ContractHooks:
    """What each backend under test provides: `backend`, how a tree (directory or subvolume)
    is made on it, a directory on another filesystem, and the capabilities it expects."""

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
