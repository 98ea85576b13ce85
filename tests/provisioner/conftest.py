"""Fixtures for the provisioner's lifecycle tests: a lab on the dir backend (and btrfs)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.provisioner.adapters.btrfs import BtrfsBackend
from services.provisioner.adapters.dirfs import DirBackend
from tests.provisioner.lab import Lab, running_lab
from vessel.bus.nats_port import Bus
from vessel.kube.client import KubeCluster

GiB = 1 << 30


@pytest.fixture
def dir_backend(tmp_path: Path) -> DirBackend:
    root = tmp_path / "volumes"
    root.mkdir()
    return DirBackend("local", root, 1 * GiB)


@pytest.fixture
async def lab(kube: KubeCluster, bus: Bus, dir_backend: DirBackend) -> AsyncIterator[Lab]:
    async with running_lab(kube, bus, [dir_backend]) as running:
        yield running


@pytest.fixture
async def btrfs_lab(kube: KubeCluster, bus: Bus, btrfs_root: Path) -> AsyncIterator[Lab]:
    backend = BtrfsBackend("fast", btrfs_root, 256 << 20)
    async with running_lab(kube, bus, [backend]) as running:
        yield running
