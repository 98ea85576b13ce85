"""Test helpers shared by test modules."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, TypeVar

import grpc
import pytest

from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc
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


async def backed_up_app(stack: Stack, app_id: str) -> str:
    """`source_app`, discovered with its bound claim, then backed up to `default`; the id."""
    await source_app(stack)
    async with grpc.aio.insecure_channel(stack.gateway) as channel:
        apps = rpc.AppServiceStub(channel)
        for _ in range(200):
            found = [x for x in (await apps.ListApps(pb.ListAppsRequest())).apps if x.id == app_id]
            if found and found[0].claims and found[0].claims[0].volume_name:
                break
            await asyncio.sleep(0.1)
        backing = await rpc.BackupServiceStub(channel).CreateBackup(
            pb.CreateBackupRequest(app_id=app_id, bucket="default")
        )
        done = await rpc.OperationServiceStub(channel).WaitOperation(
            pb.WaitOperationRequest(id=backing.id, timeout_seconds=120)
        )
    assert done.phase == "Completed", done.message
    return done.backup_id or backing.id


def vessel_cli(stack: Stack, token: str, *args: str) -> tuple[int, bytes, str]:
    """The `vessel` command against the stack's gateway with `token` (empty: none), as a
    separate process: (exit code, stdout, stderr)."""
    env = {
        **os.environ,
        "VESSEL_CLI_CONFIG": str(stack.workdir / "no-cli-config.yaml"),
        "VESSEL_TOKEN": token,
    }
    done = subprocess.run(
        [sys.executable, "-m", "vessel_cli.main", "--endpoint", stack.gateway, *args],
        env=env,
        capture_output=True,
        timeout=180,
    )
    return done.returncode, done.stdout, done.stderr.decode()
