"""`KubeCluster.exec` over WebSocket against the emulated API server (commands run on this
host, so these tests always use the emulator)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from vessel.kube import errors
from vessel.kube.client import KubeCluster
from vessel.kube.exec_stream import EXEC_OUTPUT_LIMIT
from vessel_dev.emulators.kube import KubeEmulator

pytestmark = pytest.mark.timeout(60)
NS = "default"


@pytest.fixture
async def cluster(kube_emulator: tuple[KubeEmulator, Path]) -> KubeCluster:
    kube = KubeCluster(kube_emulator[1], "exec")
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "db", "namespace": NS},
            "spec": {
                "containers": [
                    {
                        "name": "postgres",
                        "image": "postgres:16",
                        "env": [{"name": "PGDATA", "value": "/var/lib/postgresql/data"}],
                    },
                    {"name": "exporter", "image": "exporter:1"},
                ]
            },
        }
    )
    return kube


async def test_output_and_exit_codes(cluster: KubeCluster) -> None:
    ok = await cluster.exec(NS, "db", "postgres", ["sh", "-c", "echo out; echo err >&2"], 10)
    assert (ok.exit_code, ok.stdout, ok.stderr, ok.truncated) == (0, "out\n", "err\n", False)
    failed = await cluster.exec(NS, "db", "postgres", ["sh", "-c", "echo no >&2; exit 7"], 10)
    assert (failed.exit_code, failed.stderr) == (7, "no\n")


async def test_env_of_the_container_spec(cluster: KubeCluster) -> None:
    result = await cluster.exec(NS, "db", "postgres", ["sh", "-c", 'echo "$PGDATA"'], 10)
    assert result.stdout == "/var/lib/postgresql/data\n"
    other = await cluster.exec(NS, "db", "exporter", ["sh", "-c", 'echo "[$PGDATA]"'], 10)
    assert other.stdout == "[]\n"


async def test_output_is_truncated_to_its_tail(cluster: KubeCluster) -> None:
    script = f"head -c {EXEC_OUTPUT_LIMIT * 3} /dev/zero | tr '\\0' a; echo END"
    result = await cluster.exec(NS, "db", "postgres", ["sh", "-c", script], 20)
    assert result.exit_code == 0 and result.truncated
    assert len(result.stdout) == EXEC_OUTPUT_LIMIT and result.stdout.endswith("aaaEND\n")


async def test_missing_pod_and_container_are_named(cluster: KubeCluster) -> None:
    with pytest.raises(errors.NotFound, match='pods "ghost" not found'):
        await cluster.exec(NS, "ghost", "postgres", ["true"], 10)
    with pytest.raises(errors.BadRequest, match="container mysql is not valid for pod db"):
        await cluster.exec(NS, "db", "mysql", ["true"], 10)
    with pytest.raises(errors.ExecFailed, match="no-such-binary"):
        await cluster.exec(NS, "db", "postgres", ["no-such-binary"], 10)


async def test_timeout_closes_the_stream_and_ends_the_command(
    cluster: KubeCluster, tmp_path: Path
) -> None:
    marker = tmp_path / "done"
    started = time.monotonic()
    with pytest.raises(errors.ExecTimeout, match="did not finish within 1s"):
        await cluster.exec(NS, "db", "postgres", ["sh", "-c", f"sleep 3; touch {marker}"], 1)
    assert time.monotonic() - started < 2.5
    await asyncio.sleep(started + 3.5 - time.monotonic())
    assert not marker.exists()  # the command was ended with its stream


async def test_cancelled_exec_ends_the_command(cluster: KubeCluster, tmp_path: Path) -> None:
    marker = tmp_path / "done"
    task: asyncio.Task[Any] = asyncio.create_task(
        cluster.exec(NS, "db", "postgres", ["sh", "-c", f"sleep 1; touch {marker}"], 30)
    )
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(1.5)
    assert not marker.exists()
