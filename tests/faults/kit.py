"""What the fault tests share: a stack with short deadlines, operations started and
followed through the gateway (which may itself be down), services killed with SIGKILL
and started again, restored data compared, and a row of the suite's results table."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.support import full_stack
from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc
from vessel.kube.client import KubeCluster
from vessel_dev.rig.processes import Process, wait_until
from vessel_dev.rig.scenario import APP, CLAIM, NAMESPACE, bound_volume_path, tree_digest
from vessel_dev.rig.stack import BUCKET, Stack, _ready

APP_ID = f"cluster-a.{NAMESPACE}.{APP}"
FINAL = {"Completed", "PartiallyFailed", "Failed", "Canceled"}
DEADLINE = 150.0
"""Seconds within which every operation of the suite must end."""
SHORT = {
    "VESSEL_REDELIVERY_SECONDS": "3",  # a killed worker's message goes on after 3 s
    "VESSEL_OPERATION_STALL_SECONDS": "60",  # the watchdog's deadline
}


@contextlib.contextmanager
def fault_stack(workdir: Path, **settings: str) -> Iterator[Stack]:
    """The embedded default with the suite's short deadlines (and `settings`, as
    environment variables)."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in {**SHORT, **settings}.items():
            env.setenv(name, value)
        with full_stack(workdir) as running:
            yield running


def service(stack: Stack, name: str) -> Process:
    return next(p for p in stack.services if p.name == name)


def kill(proc: Process) -> None:
    """SIGKILL to the service's process group: no clean-up of any kind."""
    assert proc.popen is not None and proc.alive(), f"{proc.name} is not running"
    os.killpg(proc.popen.pid, signal.SIGKILL)
    proc.popen.wait()


def all_ready(stack: Stack) -> None:
    """Every service process alive and ready (connected) again."""
    dead = [p.name for p in stack.services if not p.alive()]
    assert not dead, f"services exited: {dead}\n{stack.logs()}"
    wait_until(
        lambda: all(_ready(address) for address in stack.metrics.values()),
        60,
        "every service ready",
    )


def call(stack: Stack, method: Callable[[Any], Any], *args: Any) -> Any:
    """`method(stub)(*args)` on a fresh channel; None while the gateway is unavailable."""
    with grpc.insecure_channel(stack.gateway) as channel:
        try:
            return method(channel)(*args)
        except grpc.RpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                return None
            raise


def operation(stack: Stack, op_id: str) -> pb.Operation | None:
    return call(
        stack,
        lambda ch: rpc.OperationServiceStub(ch).GetOperation,
        pb.GetOperationRequest(id=op_id),
    )


async def until(
    stack: Stack, op_id: str, ready: Callable[[pb.Operation], bool], within: float
) -> pb.Operation:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        op = await asyncio.to_thread(operation, stack, op_id)
        if op is not None and ready(op):
            return op
        await asyncio.sleep(0.05)
    raise AssertionError(f"operation {op_id}: not as awaited within {within:.0f}s")


async def final(stack: Stack, op_id: str, since: float) -> tuple[pb.Operation, float]:
    """The operation once it ended, and the seconds from `since` (a monotonic time) to
    when that was seen; fails past the suite's deadline."""
    op = await until(stack, op_id, lambda o: o.phase in FINAL, DEADLINE)
    return op, time.monotonic() - since


def state(op: pb.Operation) -> str:
    """Where an operation was: its phase, and its volumes' states and bytes so far."""
    volumes = ", ".join(f"{v.state} {v.bytes >> 20} MiB" for v in op.volumes)
    return f"{op.phase} ({volumes})" if volumes else op.phase


def moving(op: pb.Operation) -> bool:
    """A volume's data is on its way."""
    return any(v.state == "Moving" for v in op.volumes)


def backup(stack: Stack, request_id: str) -> str:
    request = pb.CreateBackupRequest(app_id=APP_ID, bucket="default", request_id=request_id)
    return str(call(stack, lambda ch: rpc.BackupServiceStub(ch).CreateBackup, request).id)


def restore(stack: Stack, backup_id: str, namespace: str) -> str:
    request = pb.CreateRestoreRequest(
        backup_id=backup_id,
        bucket="default",
        target_cluster="cluster-b",
        namespace_mapping={NAMESPACE: namespace},
        request_id=f"restore-{namespace}",
    )
    return str(call(stack, lambda ch: rpc.RestoreServiceStub(ch).CreateRestore, request).id)


async def restored_digest(stack: Stack, namespace: str) -> dict[str, str]:
    kube = KubeCluster(stack.kubeconfigs["cluster-b"], "cluster-b")
    return tree_digest(await bound_volume_path(kube, namespace, CLAIM))


def repository_check(stack: Stack) -> subprocess.CompletedProcess[str]:
    """`vessel-repo check --read-data` on the stack's bucket, as an operator runs it."""
    cli = [sys.executable, "-m", "services.mover.repo.cli"]
    return subprocess.run(
        [*cli, "--s3", stack.s3.endpoint, "--bucket", BUCKET, "check", "--read-data"],
        env={**os.environ, **stack.env()},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def row(
    record: Callable[[str, object], None],
    fault: str,
    op: pb.Operation,
    took: float,
    data: str,
    at_fault: str = "",
) -> None:
    """One line of the suite's results table (printed at the end of the run): the fault,
    where the operation was then, its final phase, seconds from the fault to it, and what
    the data check found."""
    line = {"fault": fault, "kind": op.kind, "at_fault": at_fault, "phase": op.phase}
    record("fault_row", {**line, "seconds": round(took, 1), "data": data})
