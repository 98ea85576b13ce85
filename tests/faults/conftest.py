"""The fault suite's stack (one per module, with short deadlines) and app. Its tests record
rows of the results table that `tests/conftest.py` prints at the end of a run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.kit import APP_ID, call, fault_stack
from tests.support import source_app
from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc
from vessel.kube.client import KubeCluster
from vessel_dev.rig.scenario import CLAIM, NAMESPACE, bound_volume_path
from vessel_dev.rig.stack import Stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with fault_stack(tmp_path_factory.mktemp("faults")) as running:
        yield running


@pytest.fixture(scope="module")
def source(stack: Stack) -> Path:
    """The app in cluster A, discovered with its volume; the volume's path."""

    async def make() -> Path:
        await source_app(stack)
        kube = KubeCluster(stack.kubeconfigs["cluster-a"], "cluster-a")
        return await bound_volume_path(kube, NAMESPACE, CLAIM)

    path = asyncio.run(make())
    for _ in range(300):
        listed = call(stack, lambda ch: rpc.AppServiceStub(ch).ListApps, pb.ListAppsRequest())
        app = next((a for a in listed.apps if a.id == APP_ID), None) if listed else None
        if app is not None and app.claims and app.claims[0].volume_name:
            return path
        time.sleep(0.1)
    raise AssertionError(f"{APP_ID} was not discovered with its volume")
