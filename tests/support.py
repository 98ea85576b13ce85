"""Test helpers shared by test modules."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, TypeVar

import pytest

from vessel.kube.client import KubeCluster
from vessel.objectstore.base import ObjectStore
from vessel.sealed.documents import SealedStore
from vessel.sealed.keys import MasterKey
from vessel_dev.rig.btrfs import btrfs_available
from vessel_dev.rig.processes import MissingComponent
from vessel_dev.rig.scenario import create_app_with_data
from vessel_dev.rig.stack import Stack

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(reason: str | None) -> None:
    """Skip when `reason` is set, except in CI where a missing component is a failure."""
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"required component missing in CI: {reason}")
    pytest.skip(reason)


class Server(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


S = TypeVar("S", bound=Server)


@contextlib.contextmanager
def started(server: S) -> Iterator[S]:
    """`server` running for a test, stopped after; a missing binary skips the test (fails
    it in CI)."""
    try:
        server.start()
    except MissingComponent as exc:
        require(str(exc))
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def full_stack(workdir: Path) -> Iterator[Stack]:
    """A full stack in `workdir` (in CI, which runs as root with btrfs-progs, btrfs is not
    optional); its logs printed once stopped."""
    if IN_CI:
        require(btrfs_available())
    with Stack(workdir) as running:
        yield running
        print(running.logs())


async def source_app(stack: Stack) -> dict[str, str]:
    """The StorageClass in clusters A and B, the app with data in cluster A; its digest."""
    a = KubeCluster(stack.kubeconfigs["cluster-a"], "cluster-a")
    b = KubeCluster(stack.kubeconfigs["cluster-b"], "cluster-b")
    for kube in (a, b):
        await kube.create(stack.storage_class())
    return await create_app_with_data(a)


def sealed(store: ObjectStore) -> SealedStore:
    """`store` with a fresh master key, as protection opens a bucket."""
    return SealedStore(store, MasterKey.generate())
