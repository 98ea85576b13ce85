"""Protection benchmark: an app with 3 claims (1 GiB in total) backed up from cluster A
and restored into cluster B through the S3 server, every service its own process.

Run: `.venv/bin/python bench/protection.py [--mib 1024] [--apps 100]`.
Measures, through the real gateway (gRPC) and the real services:
- backup_seconds / restore_seconds: from the request to the operation's Completed phase;
- *_transfer_parallelism: the growth of the mover's own `vessel_mover_transfer_duration_
  seconds` sum over the operation, per second of the operation: above 1, the app's
  volumes moved in parallel (`mover_transfers`);
- verify_seconds: a restore verification of the same backup (restored into cluster A's
  scratch namespaces, every file read back, deleted) against the restore's time;
- schedule_fire_lag_max_seconds: `--apps` schedules due in the same minute; the largest lag
  between a due time and its `protection.schedule.fired` event (goal: within 5 s).
No peer product runs here; the peer is the issue's goal (ratio = goal / vessel: > 1 is
better). Ends with one JSON line per metric.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vessel.api.v1 import protection_pb2 as ppb  # noqa: E402
from vessel.api.v1 import protection_pb2_grpc as prpc  # noqa: E402
from vessel.api.v1 import vessel_pb2 as pb  # noqa: E402
from vessel.api.v1 import vessel_pb2_grpc as rpc  # noqa: E402
from vessel.bus.nats_port import Bus  # noqa: E402
from vessel.contracts import subjects  # noqa: E402
from vessel.contracts.protection import PutSchedule, ScheduleSpec  # noqa: E402
from vessel.kube.client import KubeCluster  # noqa: E402
from vessel_dev.rig.scenario import (  # noqa: E402
    bound_volume_path,
    claim_object,
    deployment_object,
    tree_digest,
)
from vessel_dev.rig.stack import Stack  # noqa: E402

NAMESPACE, APP = "bench", "bench"
CLAIMS = ("bench-db", "bench-files", "bench-logs")


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def app_objects(mib_each: int) -> list[dict[str, Any]]:
    labels = {"app": APP}
    claims = [claim_object(name, NAMESPACE, labels, f"{mib_each + 64}Mi") for name in CLAIMS]
    mounts = [{"name": c, "mountPath": f"/data/{c}"} for c in CLAIMS]
    container = {"name": "app", "image": "busybox", "volumeMounts": mounts}
    deployment = deployment_object(
        "bench-app", NAMESPACE, labels, container, {c: c for c in CLAIMS}
    )
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    return [namespace, *claims, deployment]


def fill(root: Path, mib: int, seed: int) -> None:
    """Random (incompressible) data: 8 MiB files, so the mover's data path dominates."""
    chunk = 8 << 20
    for i in range(max(1, mib // 8)):
        (root / f"part-{seed}-{i:04d}.bin").write_bytes(os.urandom(chunk))


def mover_seconds(stack: Stack, direction: str) -> float:
    total = 0.0
    for name, address in stack.metrics.items():
        if not name.startswith("mover"):
            continue
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as reply:
            text = reply.read().decode()
        for family in text_string_to_metric_families(text):
            if family.name != "vessel_mover_transfer_duration_seconds":
                continue
            for sample in family.samples:
                if sample.name.endswith("_sum") and sample.labels.get("direction") == direction:
                    total += sample.value
    return total


def run_operation(stack: Stack, start: Any, direction: str) -> tuple[float, float, Any]:
    """(wall seconds, mover seconds, the finished operation), waited for by the gateway."""
    before = mover_seconds(stack, direction)
    t0 = time.perf_counter()
    with grpc.insecure_channel(stack.gateway) as channel:
        op = start(channel)
        done = rpc.OperationServiceStub(channel).WaitOperation(
            pb.WaitOperationRequest(id=op.id, timeout_seconds=1800)
        )
    wall = time.perf_counter() - t0
    if done.phase != "Completed":
        raise RuntimeError(f"{done.kind} {done.id} ended {done.phase}: {done.message}")
    return wall, mover_seconds(stack, direction) - before, done


async def wait_for_app(stack: Stack, app_id: str) -> None:
    with grpc.insecure_channel(stack.gateway) as channel:
        apps = rpc.AppServiceStub(channel)
        for _ in range(600):
            try:
                app = apps.GetApp(pb.GetAppRequest(id=app_id))
                if len(app.claims) == len(CLAIMS) and all(c.volume_name for c in app.claims):
                    return
            except grpc.RpcError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError(f"app {app_id} with {len(CLAIMS)} bound claims not discovered")


async def backup_and_restore(stack: Stack, mib: int) -> list[dict[str, Any]]:
    a = KubeCluster(stack.kubeconfigs["cluster-a"], "cluster-a")
    b = KubeCluster(stack.kubeconfigs["cluster-b"], "cluster-b")
    for kube in (a, b):
        await kube.create(stack.storage_class())
    for obj in app_objects(mib // len(CLAIMS)):
        await a.create(obj)
    digests = {}
    for seed, claim in enumerate(CLAIMS):
        path = await bound_volume_path(a, NAMESPACE, claim)
        fill(path, mib // len(CLAIMS), seed)
        digests[claim] = tree_digest(path)
    os.sync()  # the app wrote its data long ago: the backup must not pay for flushing it
    app_id = f"cluster-a.{NAMESPACE}.{APP}"
    await wait_for_app(stack, app_id)
    log(f"backing up {mib} MiB in {len(CLAIMS)} volumes")
    backup_wall, backup_mover, backup = await asyncio.to_thread(
        run_operation,
        stack,
        lambda ch: rpc.BackupServiceStub(ch).CreateBackup(
            pb.CreateBackupRequest(app_id=app_id, bucket="default")
        ),
        "backup",
    )
    log("restoring into cluster-b")
    restore_wall, restore_mover, _ = await asyncio.to_thread(
        run_operation,
        stack,
        lambda ch: rpc.RestoreServiceStub(ch).CreateRestore(
            pb.CreateRestoreRequest(
                backup_id=backup.backup_id or backup.id,
                bucket="default",
                target_cluster="cluster-b",
                namespace_mapping={NAMESPACE: "bench-restored"},
            )
        ),
        "restore",
    )
    for claim in CLAIMS:
        path = await bound_volume_path(b, "bench-restored", claim)
        if tree_digest(path) != digests[claim]:
            raise RuntimeError(f"restored claim {claim} differs from its source")
    log("verifying the backup (a restore into a scratch namespace, read back, deleted)")
    verify_wall, _, _ = await asyncio.to_thread(
        run_operation,
        stack,
        lambda ch: prpc.VerificationServiceStub(ch).CreateVerification(
            ppb.CreateVerificationRequest(
                app_id=app_id, bucket="default", backup_id=backup.backup_id or backup.id
            )
        ),
        "restore",
    )
    mb = mib * 1.048576
    return [
        _goal("backup_seconds", backup_wall, None),
        _goal("restore_seconds", restore_wall, None),
        {"metric": "backup_MBps", "vessel": round(mb / backup_wall, 1)},
        {"metric": "restore_MBps", "vessel": round(mb / restore_wall, 1)},
        parallelism("backup", backup_wall, backup_mover),
        parallelism("restore", restore_wall, restore_mover),
        {
            "metric": "verify_seconds",
            "vessel": round(verify_wall, 3),
            "peer": "restore of the same backup",
            "peer_value": round(restore_wall, 3),
            "ratio": round(restore_wall / verify_wall, 3),
        },
    ]


def parallelism(direction: str, wall: float, mover: float) -> dict[str, Any]:
    """Seconds of volume transfers per second of the operation: above 1, its volumes moved
    in parallel (so orchestration time hides behind them and cannot be told apart)."""
    return {
        "metric": f"{direction}_transfer_parallelism",
        "vessel": round(mover / wall, 3),
        "peer": "one volume at a time",
        "peer_value": 1.0,
        "ratio": round(mover / wall, 3),
    }


def _goal(metric: str, value: float, goal: float | None) -> dict[str, Any]:
    line: dict[str, Any] = {"metric": metric, "vessel": round(value, 4)}
    if goal is not None:
        line.update(peer="goal", peer_value=goal, ratio=round(goal / value, 2) if value else None)
    return line


async def schedules_fire_on_time(stack: Stack, apps: int) -> list[dict[str, Any]]:
    bus = Bus(source="/bench/protection")
    await bus.connect(stack.nats.url, name="bench-protection")
    try:
        now = datetime.now(UTC)
        due = (now + timedelta(minutes=1 if now.second < 40 else 2)).replace(
            second=0, microsecond=0
        )
        for i in range(apps):
            spec = ScheduleSpec(
                id=f"bench-{i:03d}",
                app_id=f"cluster-a.bench-{i:03d}.bench-{i:03d}",
                kind="snapshot",
                bucket="default",
                frequency="cron",
                cron=f"{due.minute} * * * *",
            )
            await bus.publish(
                subjects.PUT_SCHEDULE, PutSchedule(operation_id=f"put-{spec.id}", schedule=spec)
            )
        log(f"{apps} schedules due at {due:%H:%M:%S}; waiting")
        lags: dict[str, float] = {}
        async with asyncio.timeout((due - datetime.now(UTC)).total_seconds() + 60):
            async for _, event in bus.tail(subjects.SCHEDULE_FIRED.subject):
                data = event.data or {}
                if str(data.get("schedule_id", "")).startswith("bench-"):
                    lags[data["schedule_id"]] = (event.time - due).total_seconds()
                if len(lags) == apps:
                    break
    finally:
        await bus.close()
    return [
        _goal("schedule_fire_lag_max_seconds", max(lags.values()), 5.0),
        {"metric": "schedules_fired", "vessel": len(lags), "peer": "goal", "peer_value": apps},
    ]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024, help="data across the 3 claims")
    parser.add_argument("--apps", type=int, default=100, help="schedules due together")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vessel-bench-") as tmp:
        stack = Stack(Path(tmp), capacity_bytes=(2 * args.mib + 1024) << 20)  # + a verified copy
        with stack:
            log(f"stack up; cluster-a backend: {stack.backend_types['cluster-a']}")
            lines = await backup_and_restore(stack, args.mib)
            if args.apps:
                lines += await schedules_fire_on_time(stack, args.apps)
    for line in lines:
        print(json.dumps(line))


if __name__ == "__main__":
    asyncio.run(main())
