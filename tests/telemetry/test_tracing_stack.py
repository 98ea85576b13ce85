"""One trace across the whole stack: a backup made with the CLI (continuing a caller's
TRACEPARENT) reaches the gateway, protection and the mover, each its own process exporting
to a real OTLP collector, and every hop is the child of the one before."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.telemetry.collector import Collector, Received
from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc
from vessel.contracts import subjects
from vessel.kube.client import KubeCluster
from vessel_dev.rig.scenario import CLAIM, NAMESPACE, app_objects, bound_volume_path, create_all
from vessel_dev.rig.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]
APP_ID = f"cluster-a.{NAMESPACE}.shop"
CREATE_BACKUP = "vessel.api.v1.BackupService/CreateBackup"


@pytest.fixture
def stack(tmp_path: Path, collector: Collector, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")  # services export within a moment
    with Stack(tmp_path / "stack", btrfs=False, otlp_endpoint=collector.endpoint) as running:
        yield running
        print(running.logs())


async def app_ready(stack: Stack) -> None:
    with grpc.insecure_channel(stack.gateway) as channel:
        apps = rpc.AppServiceStub(channel)
        for _ in range(150):
            listed = apps.ListApps(pb.ListAppsRequest()).apps
            if any(a.id == APP_ID and a.claims and a.claims[0].volume_name for a in listed):
                return
            await asyncio.sleep(0.1)
    raise AssertionError(f"app {APP_ID} never discovered with its volume")


async def cli(stack: Stack, collector: Collector, traceparent: str, *args: str) -> str:
    env = {
        **os.environ,
        "TRACEPARENT": traceparent,
        "VESSEL_OTLP_ENDPOINT": collector.endpoint,
        "VESSEL_CLI_CONFIG": str(stack.workdir / "no-cli-config.yaml"),
        "VESSEL_TOKEN": "",
    }
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "vessel_cli.main", "--endpoint", stack.gateway, *args),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 0, err.decode()
    return out.decode()


def only(spans: list[Received], service: str, kind: str, name: str) -> Received:
    found = [s for s in spans if (s.service, s.kind, s.name) == (service, kind, name)]
    assert len(found) == 1, f"{service} {kind} {name}: {[(s.service, s.name) for s in spans]}"
    return found[0]


def lineage(spans: list[Received], span: Received) -> list[Received]:
    """The ancestors of `span` within `spans`, nearest first."""
    by_id = {s.span_id: s for s in spans}
    found: list[Received] = []
    while span.parent_id in by_id:
        span = by_id[span.parent_id]
        found.append(span)
    return found


async def test_a_cli_backup_is_one_trace_through_every_service(
    stack: Stack, collector: Collector
) -> None:
    kube = KubeCluster(stack.kubeconfigs["cluster-a"], "cluster-a")
    await kube.create(stack.storage_class())
    await create_all(kube, app_objects())
    volume = await bound_volume_path(kube, NAMESPACE, CLAIM)
    (volume / "data.bin").write_bytes(os.urandom(3 << 20))
    (volume / "notes.txt").write_text("traced\n")
    await app_ready(stack)

    trace_id, caller = secrets.token_hex(16), secrets.token_hex(8)
    out = await cli(
        stack,
        collector,
        f"00-{trace_id}-{caller}-01",
        *("-o", "json", "backup", "create", APP_ID, "--bucket", "default", "--wait"),
    )
    assert json.loads(out)["phase"] == "Completed"

    def whole(spans: list[Received]) -> bool:
        ours = [s for s in spans if s.trace_id == trace_id]
        return any(s.name == "mover.transfer" for s in ours) and any(
            s.service == "vessel-cli" for s in ours
        )

    spans = [s for s in await collector.wait_for(whole, within=20) if s.trace_id == trace_id]
    backup_cmd = subjects.CREATE_BACKUP.subject_for()
    mover_cmd = subjects.MOVE_TO_BUCKET.subject_for("cluster-a")

    client = only(spans, "vessel-cli", "CLIENT", CREATE_BACKUP)
    server = only(spans, "vessel-gateway", "SERVER", CREATE_BACKUP)
    sent = only(spans, "vessel-gateway", "PRODUCER", f"{backup_cmd} publish")
    handled = only(spans, "vessel-protection", "CONSUMER", f"{backup_cmd} process")
    asked = only(spans, "vessel-protection", "PRODUCER", f"{mover_cmd} publish")
    moved = only(spans, "vessel-mover", "CONSUMER", f"{mover_cmd} process")
    transfer = only(spans, "vessel-mover", "INTERNAL", "mover.transfer")

    assert client.parent_id == caller
    direct = [(client, server), (server, sent), (sent, handled), (asked, moved), (moved, transfer)]
    for parent, child in direct:
        assert child.parent_id == parent.span_id, f"{child.name} is not a child of {parent.name}"
    # Protection may take steps in between (an app snapshot first), all in the same trace.
    assert handled in lineage(spans, asked), f"{asked.name} does not descend from {handled.name}"
    assert server.attributes["rpc.method"] == "CreateBackup"
    assert server.attributes["rpc.grpc.status_code"] == 0
    assert moved.attributes["messaging.destination.name"] == mover_cmd
    assert transfer.attributes["vessel.transfer.direction"] == "backup"
    assert transfer.attributes["vessel.transfer.bytes"] >= 3 << 20
    assert transfer.attributes["vessel.transfer.files"] >= 2
    assert not any(s.error for s in spans)

    # What the mover logged while copying names the trace and the transfer's span.
    with (stack.workdir / "mover-cluster-a.log").open() as log:
        lines = [json.loads(line) for line in log if line.startswith("{")]
    during = [x for x in lines if x.get("trace_id") == trace_id]
    assert any(x["span_id"] == transfer.span_id for x in during), during
