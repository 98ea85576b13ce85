"""Builds configured backends by type."""

from __future__ import annotations

from services.provisioner.adapters.base import StorageBackend
from services.provisioner.adapters.btrfs import BtrfsBackend
from services.provisioner.adapters.dirfs import DirBackend
from vessel.config import BackendConfig


def build_backend(config: BackendConfig) -> StorageBackend:
    cls = BtrfsBackend if config.type == "btrfs" else DirBackend
    return cls(config.name, config.path, config.capacity_bytes)
