"""The fault suite's stack (one per module, with short deadlines) and app, and its results
table, printed at the end of a run: each test records its rows (fault, operation, final
phase, seconds to it, data check) as a user property, which also crosses from
pytest-xdist's workers."""

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


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    rows = [
        value
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call"
        for name, value in getattr(report, "user_properties", [])
        if name == "fault_row"
    ]
    if not rows:
        return
    terminalreporter.section("faults: every operation's final phase")
    head = ("fault", "operation", "at the fault", "final phase", "seconds", "data check")
    terminalreporter.write_line(" | ".join(head))
    for r in rows:
        cells = (r["fault"], r["kind"], r["at_fault"], r["phase"], f"{r['seconds']:.1f}", r["data"])
        terminalreporter.write_line(" | ".join(cells))
