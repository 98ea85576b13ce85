"""Discovery benchmark: 30 emulated clusters x 100 apps (~30k objects).

Run: `.venv/bin/python bench/discovery.py [--clusters 30] [--apps 100] [--changes 200]`.
Processes: NATS; one process hosting every emulated API server (each on its own thread
and port); the discovery service (`python -m services.discovery`, the clusters in its
settings); this driver, which fills the clusters over HTTP, then measures:
- inventory_full_seconds: from starting discovery to the last app's `app.discovered`
  (wall clock, process start included), and discovery's own CPU seconds until then;
- change_to_event p50/p99: from a Deployment's image patch being sent to its
  `app.changed` event arriving here (changes spread over the clusters, 10 at a time);
- discovery_peak_rss_mb: the discovery process's peak RSS (VmHWM) at the end.
No peer tool exists; the peer is the issue's goal (ratio = goal / vessel: > 1 is better).
Ends with one JSON line per metric.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import yaml

from vessel.kube.objects import KubeObject

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vessel.bus.nats_port import Bus  # noqa: E402
from vessel_dev.emulators.kube import KubeEmulator  # noqa: E402
from vessel_dev.rig.processes import NatsServer  # noqa: E402

TOKEN = "bench-token"
NAMESPACES = 10
GOALS = {"inventory": 30.0, "latency": 1.0, "rss_mb": 500.0}


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- the emulated clusters (a separate process) ------------------------------------------


def serve_emulators(count: int, directory: Path) -> None:
    """Start `count` emulators, write their kubeconfigs, print READY, wait for SIGTERM."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    emulators = []
    for i in range(count):
        # Plain HTTP: `populate` posts to the URLs directly, and the numbers stay comparable
        # with earlier runs.
        emulator = KubeEmulator(token=TOKEN, history=20_000, tls=False)
        emulator.start()
        emulator.write_kubeconfig(directory / f"c{i:02d}.kubeconfig")
        emulators.append(emulator)
    print("READY " + " ".join(e.url for e in emulators), flush=True)
    while not stop.wait(0.5):
        pass
    for emulator in emulators:
        emulator.stop()


# --- objects -----------------------------------------------------------------------------


def app_objects(ns: str, app: str) -> list[tuple[str, KubeObject]]:
    """(collection path, body) of one app: ~10 objects."""
    labels = {"app.kubernetes.io/instance": app, "app.kubernetes.io/component": "web"}
    meta = {"name": app, "namespace": ns, "labels": labels}
    pod_spec = {
        "containers": [{"name": "main", "image": "nginx:1.25"}],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": app}}],
    }
    core, apps = f"/api/v1/namespaces/{ns}", f"/apis/apps/v1/namespaces/{ns}"
    pv_name = f"pv-{ns}-{app}"
    objs: list[tuple[str, KubeObject]] = [
        (
            "/api/v1/persistentvolumes",
            {
                "metadata": {"name": pv_name},
                "spec": {
                    "capacity": {"storage": "1Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "fast",
                    "hostPath": {"path": f"/tmp/{pv_name}"},
                    "claimRef": {"namespace": ns, "name": app},
                },
            },
        ),
        (
            f"{core}/persistentvolumeclaims",
            {
                "metadata": meta,
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "fast",
                    "volumeName": pv_name,
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
        ),
        (
            f"{apps}/deployments",
            {
                "metadata": meta,
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": labels},
                    "template": {"metadata": {"labels": labels}, "spec": pod_spec},
                },
            },
        ),
        (
            f"{core}/services",
            {"metadata": meta, "spec": {"selector": labels, "ports": [{"port": 80}]}},
        ),
        (
            f"{core}/configmaps",
            {"metadata": {**meta, "name": f"{app}-config"}, "data": {"k": "v" * 200}},
        ),
        (
            f"{core}/secrets",
            {"metadata": {**meta, "name": f"{app}-creds"}, "data": {"p": "c2VjcmV0"}},
        ),
        (f"{core}/serviceaccounts", {"metadata": meta}),
        (
            f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses",
            {
                "metadata": meta,
                "spec": {"defaultBackend": {"service": {"name": app, "port": {"number": 80}}}},
            },
        ),
    ]
    for i in range(2):
        pod = {"metadata": {**meta, "name": f"{app}-{i}"}, "spec": pod_spec}
        objs.append((f"{core}/pods", pod))
    return objs


async def populate(urls: list[str], apps: int) -> int:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    per_ns = max(apps // NAMESPACES, 1)
    created = 0

    async def fill(session: aiohttp.ClientSession, url: str) -> int:
        count = 0

        async def post(path: str, body: KubeObject) -> None:
            nonlocal count
            async with session.post(url + path, json=body, headers=headers) as resp:
                if resp.status not in (200, 201):
                    raise RuntimeError(f"{url}{path}: HTTP {resp.status} {await resp.text()}")
            count += 1

        sc = {"metadata": {"name": "fast"}, "provisioner": "example.com/none"}
        await post("/apis/storage.k8s.io/v1/storageclasses", sc)
        for n in range(NAMESPACES):
            await post("/api/v1/namespaces", {"metadata": {"name": f"ns{n}"}})
        for j in range(apps):
            for path, body in app_objects(f"ns{j // per_ns}", f"app{j:03d}"):
                await post(path, body)
        return count

    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector) as session:
        for count in await asyncio.gather(*(fill(session, u) for u in urls)):
            created += count
    return created


# --- the discovery process ---------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class AppEvents:
    """What the driver hears of the apps: every app discovered (until `total`), and when
    each app's `app.changed` events arrived."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.discovered: set[str] = set()
        self.arrivals: dict[str, list[float]] = {}
        self.full = asyncio.Event()

    async def collect(self, bus: Bus) -> None:
        async for _, event in bus.tail("vessel.evt.discovery.*.app.>"):
            app = event.data["app"]
            app_id = f"{app['cluster']}.{app['namespace']}.{app['name']}"
            if event.type.endswith(".discovered.v1"):
                self.discovered.add(app_id)
                if len(self.discovered) >= self.total:
                    self.full.set()
            elif event.type.endswith(".changed.v1"):
                self.arrivals.setdefault(app_id, []).append(time.monotonic())


def metric(name: str, value: float, goal: float) -> str:
    ratio = goal / value if value else 0.0
    return json.dumps(
        {
            "metric": name,
            "vessel": round(value, 3),
            "peer": "goal",
            "peer_value": goal,
            "ratio": round(ratio, 2),
        }
    )


async def measure(
    args: argparse.Namespace, work: Path, nats: NatsServer, urls: list[str]
) -> list[str]:
    kubeconfigs = sorted(work / f"c{i:02d}.kubeconfig" for i in range(len(urls)))
    config = {
        "nats_url": nats.url,
        "log_level": "WARNING",
        "state_dir": str(work / "state"),
        "clusters": [{"id": p.stem, "kubeconfig": str(p)} for p in kubeconfigs],
    }
    (work / "vessel.yaml").write_text(yaml.safe_dump(config))
    bus = Bus(source="/clusters/bench/driver")
    await bus.connect(nats.url, name="bench")
    heard = AppEvents(args.clusters * args.apps)
    collector = asyncio.create_task(heard.collect(bus))
    await asyncio.sleep(0.5)
    env = {**os.environ, "VESSEL_CONFIG": str(work / "vessel.yaml")}
    log_file = (work / "discovery.log").open("w")
    started = time.monotonic()
    proc = subprocess.Popen(  # noqa: ASYNC220 (started once, before measuring)
        [sys.executable, "-m", "services.discovery"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log_file,
    )
    try:
        try:
            await asyncio.wait_for(heard.full.wait(), 240)
        except TimeoutError:
            raise SystemExit(
                f"only {len(heard.discovered)}/{heard.total} apps after 240 s; see {work}"
            ) from None
        wall = time.monotonic() - started
        cpu = cpu_seconds(proc.pid)
        log(
            f"full inventory: {len(heard.discovered)} apps in {wall:.1f}s, discovery CPU {cpu:.1f}s"
        )
        await asyncio.sleep(2.0)  # let the status updates of the initial sync settle
        latencies = await changes(args, urls, heard.arrivals)
        rss = peak_rss_mb(proc.pid)
        idle = cpu_seconds(proc.pid)
        await asyncio.sleep(5.0)
        idle = (cpu_seconds(proc.pid) - idle) / 5.0
        log(f"idle: discovery uses {idle:.0%} of a core (emulator watch bookmarks every 0.5 s)")
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:  # Bus.close() can wait 30 s on a drain
            proc.kill()
            proc.wait()
        collector.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await collector
        await bus.close()
    p50 = statistics.median(latencies)
    p99 = statistics.quantiles(latencies, n=100)[98] if len(latencies) >= 2 else latencies[0]
    log(f"{len(latencies)} changes: p50 {p50:.3f}s, p99 {p99:.3f}s; peak RSS {rss:.0f} MB")
    return [
        metric("inventory_full_seconds", wall, GOALS["inventory"]),
        metric("inventory_discovery_cpu_seconds", cpu, GOALS["inventory"]),
        metric("change_to_event_p50_seconds", p50, GOALS["latency"]),
        metric("change_to_event_p99_seconds", p99, GOALS["latency"]),
        metric("discovery_peak_rss_mb", rss, GOALS["rss_mb"]),
    ]


async def changes(
    args: argparse.Namespace, urls: list[str], arrivals: dict[str, list[float]]
) -> list[float]:
    """Patch Deployment images, 10 clusters at a time; seconds until each `app.changed`."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/merge-patch+json"}
    per_ns = max(args.apps // NAMESPACES, 1)
    latencies: list[float] = []
    async with aiohttp.ClientSession() as session:

        async def change(k: int) -> float:
            cluster = k % args.clusters
            j = (k * 7) % args.apps
            ns, app = f"ns{j // per_ns}", f"app{j:03d}"
            app_id = f"c{cluster:02d}.{ns}.{app}"
            seen = len(arrivals.get(app_id, []))
            image = {"name": "main", "image": f"bench:{k}"}
            patch = {"spec": {"template": {"spec": {"containers": [image]}}}}
            url = f"{urls[cluster]}/apis/apps/v1/namespaces/{ns}/deployments/{app}"
            sent = time.monotonic()
            async with session.patch(url, data=json.dumps(patch), headers=headers) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"{url}: HTTP {resp.status}")
            deadline = sent + 30
            while len(arrivals.get(app_id, [])) <= seen:
                if time.monotonic() > deadline:
                    raise SystemExit(f"no app.changed for {app_id} within 30 s")
                await asyncio.sleep(0.005)
            return arrivals[app_id][seen] - sent

        batch = min(10, args.clusters)
        for start in range(0, args.changes, batch):
            ks = range(start, min(start + batch, args.changes))
            latencies += await asyncio.gather(*(change(k) for k in ks))
    return latencies


@contextlib.asynccontextmanager
async def emulated_clusters(count: int, apps: int, work: Path) -> AsyncIterator[list[str]]:
    """`count` emulated API servers in a process of their own (kubeconfigs `c00...` in
    `work`), each filled with `apps` apps; their URLs."""
    host = subprocess.Popen(  # noqa: ASYNC220 (started once, before measuring)
        [sys.executable, __file__, "--serve-emulators", str(count), "--dir", str(work)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert host.stdout is not None
        line = await asyncio.to_thread(host.stdout.readline)
        if not line.startswith("READY "):
            raise SystemExit(f"emulators did not start: {line!r}")
        urls = line.split()[1:]
        begun = time.monotonic()
        created = await populate(urls, apps)
        log(f"{created} objects in {len(urls)} clusters in {time.monotonic() - begun:.1f}s")
        yield urls
    finally:
        host.terminate()
        host.wait(60)


async def run(args: argparse.Namespace) -> list[str]:
    work = Path(tempfile.mkdtemp(prefix="vessel-bench-discovery-"))
    nats = NatsServer(work / "nats")
    nats.start()
    try:
        async with emulated_clusters(args.clusters, args.apps, work) as urls:
            lines = await measure(args, work, nats, urls)
    finally:
        nats.stop()
    shutil.rmtree(work, ignore_errors=True)  # kept (logs included) when a step failed
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=30)
    parser.add_argument("--apps", type=int, default=100, help="apps per cluster")
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--serve-emulators", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_emulators:
        serve_emulators(args.serve_emulators, args.dir)
        return
    for line in asyncio.run(run(args)):
        print(line, flush=True)


if __name__ == "__main__":
    main()
