"""Fleet benchmark: a hub and 30 clusters x 100 apps, each cluster with its own agent
and leaf NATS, every service its own NATS user with nats-server enforcing its permissions.

Run: `.venv/bin/python bench/fleet.py [--clusters 30] [--apps 100] [--changes 200]`.
Processes: the hub's nats-server (JetStream, domain `hub`) and one leaf nats-server per
cluster dialling it (`vessel_dev/rig/nats_topology.py`); one process hosting every
emulated API server (`bench/discovery.py`'s); the hub's discovery; one
`vessel-discovery --cluster ID` per cluster on that cluster's leaf; this driver. Measures:
- inventory_full_seconds: from starting the agents to the last app's `app.discovered`
  at the hub;
- change_to_event p50/p99: a Deployment patched in a cluster until its `app.changed`
  reaches the hub through the cluster's leaf;
- agent_call p50/p99: a Kubernetes `get` made as protection makes it, through the
  cluster's leaf to its agent and back;
- hub_discovery_peak_rss_mb, agent_peak_rss_mb (the largest of the agents),
  leaf_nats_peak_rss_mb, hub_nats_peak_rss_mb, and CPU seconds of the hub's and the
  agents' processes; the mean size of an app's inventory record (printed).
- migration_seconds: one app migrated from the first cluster to the second (backup to the
  bucket, restore through the second cluster's agent, the source scaled down), timed from
  the API call to its end, with the hub's protection and gateway and an S3 server started
  for it.
3,000 hourly schedules firing are measured by `bench/protection.py --apps 3000` (the
scheduler runs on the hub alone, fleet or not). No peer tool runs a fleet here;
the peer is the goal from the fleet issue (ratio = goal / vessel: > 1 is better). Ends with
one JSON line per metric.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import discovery as single  # noqa: E402 - bench/discovery.py: emulators, objects, changes
import grpc  # noqa: E402
from nats.js.errors import BucketNotFoundError  # noqa: E402

from services.protection.agents import AgentKube  # noqa: E402
from vessel.api.v1 import protection_pb2 as ppb  # noqa: E402
from vessel.api.v1 import protection_pb2_grpc as rpc  # noqa: E402
from vessel.api.v1 import vessel_pb2 as pb  # noqa: E402
from vessel.api.v1 import vessel_pb2_grpc as vrpc  # noqa: E402
from vessel.bus.nats_port import Bus  # noqa: E402
from vessel.contracts import state  # noqa: E402
from vessel.objectstore.minio_port import MinioStore  # noqa: E402
from vessel_dev.rig.nats_topology import NatsTopology  # noqa: E402
from vessel_dev.rig.processes import NatsServer, free_port, port_open, wait_until  # noqa: E402
from vessel_dev.rig.scenario import deployment_object  # noqa: E402
from vessel_dev.rig.servers import new_s3  # noqa: E402

GOALS = {"inventory": 30.0, "latency": 1.0, "hub_rss_mb": 1024.0, "agent_rss_mb": 150.0}
MIGRATION_GOAL = 30.0
"""Seconds for one small app's cross-cluster migration (the issue names no goal: ours)."""
BUCKET = "vessel-fleet-bench"
log = single.log
metric = single.metric


def start(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("w") as out:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=out)


def volumeless_app(name: str) -> list[dict[str, Any]]:
    """An app without claims in namespace `name`: a ConfigMap and a Deployment."""
    labels = {"app.kubernetes.io/instance": name}
    meta = {"name": name, "namespace": name, "labels": labels}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"motd": name}},
        deployment_object(name, name, labels, {"name": "web", "image": "nginx"}, {}),
    ]


async def migration_seconds(work: Path, topology: NatsTopology, bus: Bus, ids: list[str]) -> float:
    """An app made in the first cluster, migrated to the second through the hub's
    protection."""
    s3 = new_s3(work)

    def bucket_ready() -> bool:
        MinioStore(s3.endpoint, BUCKET, s3.access_key, s3.secret_key).ensure_bucket()
        return True

    s3.start(ready=bucket_ready)
    gateway = f"127.0.0.1:{free_port()}"
    config = {
        "log_level": "WARNING",
        "state_dir": str(work / "state"),
        "clusters": [],
        "gateway_listen": gateway,
        "buckets": [{"name": "default", "endpoint": s3.endpoint, "bucket": BUCKET}],
    }
    (work / "hub-protection.yaml").write_text(yaml.safe_dump(config))
    base = {
        **os.environ,
        "VESSEL_CONFIG": str(work / "hub-protection.yaml"),
        "VESSEL_S3_ACCESS_KEY": s3.access_key,
        "VESSEL_S3_SECRET_KEY": s3.secret_key,
        "VESSEL_REPOSITORY_PASSWORD": "fleet-bench",
        "VESSEL_GATEWAY_AUTH__REQUIRED": "false",
        "VESSEL_ADMIN_TOKEN": "",
    }
    procs = [
        start(
            [sys.executable, "-m", f"services.{name}"],
            {**base, **topology.environ_for(name, None)},
            work / f"{name}.log",
        )
        for name in ("protection", "gateway")
    ]
    try:
        port = int(gateway.rsplit(":", 1)[1])
        wait_until(lambda: port_open(port), 60, "the gateway listening")
        for obj in volumeless_app("moving"):  # no node agents here: an app without claims
            await AgentKube(bus, ids[0]).create(obj)
        with grpc.insecure_channel(gateway) as channel:
            apps = vrpc.AppServiceStub(channel)
            app_id = f"{ids[0]}.moving.moving"

            def known() -> bool:
                return bool(apps.GetApp(pb.GetAppRequest(id=app_id)).id)

            await asyncio.to_thread(wait_until, known, 60, f"{app_id} discovered")
            started = time.monotonic()
            op = rpc.MigrationServiceStub(channel).CreateMigration(
                ppb.CreateMigrationRequest(
                    app_id=app_id,
                    bucket="default",
                    target_cluster=ids[1],
                    namespace_mapping={"moving": "moved"},
                )
            )
            waited = pb.WaitOperationRequest(id=op.id, timeout_seconds=120)
            done = await asyncio.to_thread(vrpc.OperationServiceStub(channel).WaitOperation, waited)
            seconds = time.monotonic() - started
        if done.phase != "Completed":
            raise SystemExit(f"migration {done.phase}: {done.message}; see {work}")
        return seconds
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        s3.stop()


async def hub_ready(bus: Bus) -> None:
    """Once the hub's discovery made every KV bucket (the agents on leaves may not)."""
    for bucket in state.KV_BUCKETS:
        for _ in range(240):
            with contextlib.suppress(BucketNotFoundError):
                await bus.js.key_value(bucket.name)
                break
            await asyncio.sleep(0.25)
        else:
            raise SystemExit(f"the hub's discovery did not make KV bucket {bucket.name}")


def nats_pid(server: NatsServer) -> int:
    return int(server.process.popen.pid)


async def agent_calls(bus: Bus, ids: list[str], count: int) -> list[float]:
    """Seconds per `get` of a ConfigMap through each cluster's agent, as protection asks."""
    seconds = []
    for k in range(count):
        cluster = ids[k % len(ids)]
        started = time.monotonic()
        found = await AgentKube(bus, cluster).get("v1", "ConfigMap", "app000-config", "ns0")
        seconds.append(time.monotonic() - started)
        if found is None:
            raise SystemExit(f"{cluster}: the agent did not find ns0/app000-config")
    return seconds


async def inventory_record_bytes(bus: Bus) -> int:
    """The mean size of 50 apps' inventory records (what KV `inventory` holds per app)."""
    kv = await bus.kv("inventory")
    keys = (await kv.keys("apps"))[:50]
    sizes = [len(e.value) for k in keys if (e := await kv.get(k)) is not None]
    return sum(sizes) // max(len(sizes), 1)


def quantiles(values: list[float]) -> tuple[float, float]:
    p99 = statistics.quantiles(values, n=100)[98] if len(values) >= 2 else values[0]
    return statistics.median(values), p99


async def measure(
    args: argparse.Namespace, work: Path, topology: NatsTopology, ids: list[str]
) -> list[str]:
    clusters = [
        {"id": c, "kubeconfig": str(work / f"{c}.kubeconfig"), "agent": "cluster"} for c in ids
    ]
    base = {"log_level": "WARNING", "state_dir": str(work / "state")}
    (work / "agents.yaml").write_text(yaml.safe_dump({**base, "clusters": clusters}))
    (work / "hub.yaml").write_text(yaml.safe_dump({**base, "clusters": []}))
    bus = Bus(source="/clusters/bench/driver")
    await bus.connect(topology.hub.url, name="bench")  # the hub's administrator
    heard = single.AppEvents(args.clusters * args.apps)
    collector = asyncio.create_task(heard.collect(bus))
    await asyncio.sleep(0.5)
    hub_env = {
        **os.environ,
        "VESSEL_CONFIG": str(work / "hub.yaml"),
        **topology.environ_for("discovery", None),
    }
    hub = start([sys.executable, "-m", "services.discovery"], hub_env, work / "hub.log")
    await hub_ready(bus)  # as in a real fleet, the hub is up before clusters join it
    agents: dict[str, subprocess.Popen[bytes]] = {}
    started = time.monotonic()
    for cid in ids:
        env = {
            **os.environ,
            "VESSEL_CONFIG": str(work / "agents.yaml"),
            **topology.environ_for("discovery", cid),
        }
        argv = [sys.executable, "-m", "services.discovery", "--cluster", cid]
        agents[cid] = start(argv, env, work / f"agent-{cid}.log")
    try:
        try:
            await asyncio.wait_for(heard.full.wait(), 300)
        except TimeoutError:
            raise SystemExit(
                f"only {len(heard.discovered)}/{heard.total} apps after 300 s; see {work}"
            ) from None
        wall = time.monotonic() - started
        agents_cpu = sum(single.cpu_seconds(p.pid) for p in agents.values())
        apps = len(heard.discovered)
        log(f"full inventory: {apps} apps, {wall:.1f}s, agents' CPU {agents_cpu:.1f}s")
        await asyncio.sleep(2.0)
        latencies = await single.changes(args, args.urls, heard.arrivals)
        calls = await agent_calls(bus, ids, args.calls)
        hub_rss = single.peak_rss_mb(hub.pid)
        agent_rss = max(single.peak_rss_mb(p.pid) for p in agents.values())
        leaf_rss = max(single.peak_rss_mb(nats_pid(s)) for s in topology.leaves.values())
        hub_cpu = single.cpu_seconds(hub.pid)
        assert isinstance(topology.hub, NatsServer)
        hub_nats_rss = single.peak_rss_mb(nats_pid(topology.hub))
        record_bytes = await inventory_record_bytes(bus)
        migration = await migration_seconds(work, topology, bus, ids)
    finally:
        for proc in (hub, *agents.values()):
            proc.terminate()
        for proc in (hub, *agents.values()):
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        collector.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await collector
        await bus.close()
    p50, p99 = quantiles(latencies)
    c50, c99 = quantiles(calls)
    log(f"{len(latencies)} changes: p50 {p50:.3f}s, p99 {p99:.3f}s")
    log(f"{len(calls)} agent calls: p50 {c50 * 1000:.1f} ms, p99 {c99 * 1000:.1f} ms")
    log(f"peak RSS: hub discovery {hub_rss:.0f} MB, largest agent {agent_rss:.0f} MB, ")
    log(f"largest leaf nats-server {leaf_rss:.0f} MB; hub discovery CPU {hub_cpu:.1f}s")
    log(f"hub nats-server {hub_nats_rss:.0f} MB; an app's inventory record {record_bytes} B")
    log(f"one app migrated from {ids[0]} to {ids[1]} in {migration:.1f}s")
    return [
        metric("inventory_full_seconds", wall, GOALS["inventory"]),
        metric("change_to_event_p50_seconds", p50, GOALS["latency"]),
        metric("change_to_event_p99_seconds", p99, GOALS["latency"]),
        metric("agent_call_p99_seconds", c99, GOALS["latency"]),
        metric("hub_discovery_peak_rss_mb", hub_rss, GOALS["hub_rss_mb"]),
        metric("agent_peak_rss_mb", agent_rss, GOALS["agent_rss_mb"]),
        metric("leaf_nats_peak_rss_mb", leaf_rss, GOALS["agent_rss_mb"]),
        metric("hub_nats_peak_rss_mb", hub_nats_rss, GOALS["hub_rss_mb"]),
        metric("agents_cpu_seconds_to_inventory", agents_cpu, GOALS["inventory"]),
        metric("migration_seconds", migration, MIGRATION_GOAL),
    ]


async def run(args: argparse.Namespace) -> list[str]:
    work = Path(tempfile.mkdtemp(prefix="vessel-bench-fleet-"))
    ids = [f"c{i:02d}" for i in range(args.clusters)]
    topology = NatsTopology(work, tuple(ids))
    topology.start()
    try:
        async with single.emulated_clusters(len(ids), args.apps, work) as urls:
            args.urls = urls
            lines = await measure(args, work, topology, ids)
    finally:
        topology.stop()
    shutil.rmtree(work, ignore_errors=True)  # kept (logs included) when a step failed
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=30)
    parser.add_argument("--apps", type=int, default=100, help="apps per cluster")
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--calls", type=int, default=300, help="agent calls to time")
    for line in asyncio.run(run(parser.parse_args())):
        print(line, flush=True)


if __name__ == "__main__":
    main()
