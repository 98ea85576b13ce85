"""Provisioner benchmark: claims to Bound against the emulated API, and btrfs O(1) copies.

Run (as root, for btrfs): `.venv/bin/python bench/provisioner.py [--claims 200]`.

- PVC created -> Bound, with a real provisioner process (`python -m services.provisioner`)
  on a dir backend and on a btrfs loop filesystem, real NATS, the emulated API server over
  HTTP. Latency: claims created at the goal rate (20/s), each timed from just before its
  create request to its Bound status seen through a watch; p50 and p99. Throughput: as many
  claims created at once, PVCs/s from the first request to the last Bound.
- btrfs snapshot and clone time of a 10 MiB volume against a large one (2 GiB of real data
  on a loop image of 4 GiB, or more when the clone's promised size needs it), each the
  median of several runs; the goal is O(1): large within 1.2x.

Ends with one JSON line per metric; without a peer tool the peer is the issue's goal.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

from vessel.kube.objects import KubeObject

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.provisioner.adapters.btrfs import BtrfsBackend  # noqa: E402
from vessel.config import PROVISIONER_NAME  # noqa: E402
from vessel.kube.client import KubeCluster  # noqa: E402
from vessel.kube.informer import Informer  # noqa: E402
from vessel_dev.emulators.kube import KubeEmulator  # noqa: E402
from vessel_dev.rig.btrfs import LoopBtrfs, btrfs_available  # noqa: E402
from vessel_dev.rig.processes import NatsServer, Process  # noqa: E402

MiB, GiB = 1 << 20, 1 << 30
GOAL_P99, GOAL_RATE, GOAL_O1 = 1.0, 20.0, 1.2


def metric(
    name: str, vessel: float, peer_value: float, *, lower_is_better: bool, **extra: Any
) -> dict[str, Any]:
    ratio = peer_value / vessel if lower_is_better else vessel / peer_value
    return {
        "metric": name,
        "vessel": round(vessel, 4),
        "peer": "goal",
        "peer_value": peer_value,
        "ratio": round(ratio, 2),
        **extra,
    }


class ClaimBench:
    """One provisioner process serving one emulated cluster with one backend."""

    def __init__(self, work: Path, nats: NatsServer, kind: str, path: Path) -> None:
        self.work = work
        self.kind = kind
        self.cluster = f"bench-{kind}-{uuid.uuid4().hex[:6]}"
        self.emulator = KubeEmulator(history=100_000)
        self.emulator.start()
        kubeconfig = work / f"{kind}.kubeconfig"
        self.emulator.write_kubeconfig(kubeconfig)
        self.kube = KubeCluster(kubeconfig, self.cluster)
        config = work / f"{kind}.yaml"
        backend = {"name": f"{kind}-local", "type": kind, "path": str(path)}
        config.write_text(
            yaml.safe_dump(
                {
                    "nats_url": nats.url,
                    "log_level": "WARNING",
                    "clusters": [
                        {"id": self.cluster, "kubeconfig": str(kubeconfig), "backends": [backend]}
                    ],
                }
            )
        )
        argv = [sys.executable, "-m", "services.provisioner", "--cluster", self.cluster]
        env = {**os.environ, "VESSEL_CONFIG": str(config), "PYTHONPATH": str(ROOT)}
        self.process = Process(f"provisioner-{kind}", argv, work / f"{kind}.log", env=env)
        self.created: dict[str, float] = {}
        self.bound: dict[str, float] = {}

    async def _on_claim(self, type_: str, claim: KubeObject) -> None:
        name = claim["metadata"]["name"]
        if (claim.get("status") or {}).get("phase") == "Bound" and name not in self.bound:
            self.bound[name] = time.monotonic()

    async def _create(self, name: str) -> None:
        self.created[name] = time.monotonic()
        await self.kube.create(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {
                    "storageClassName": "bench",
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Mi"}},
                },
            }
        )

    async def _all_bound(self, names: list[str], within: float) -> None:
        deadline = time.monotonic() + within
        while not all(n in self.bound for n in names):
            if time.monotonic() > deadline or not self.process.alive():
                missing = len([n for n in names if n not in self.bound])
                raise RuntimeError(
                    f"{self.kind}: {missing} claims not bound:\n{self.process.tail()}"
                )
            await asyncio.sleep(0.01)

    async def run(self, count: int) -> list[dict[str, Any]]:
        await self.kube.create(
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {"name": "bench"},
                "provisioner": PROVISIONER_NAME,
                "reclaimPolicy": "Delete",
            }
        )
        informer = Informer(self.kube, "v1", "PersistentVolumeClaim")
        watching = asyncio.create_task(informer.run(self._on_claim))
        self.process.start()
        try:
            await self._create("warm-up")  # the process is up and serving
            await self._all_bound(["warm-up"], 60)
            paced = [f"paced-{i:04d}" for i in range(count)]
            started = time.monotonic()
            tasks = []
            for i, name in enumerate(paced):
                await asyncio.sleep(max(0.0, started + i / GOAL_RATE - time.monotonic()))
                tasks.append(asyncio.create_task(self._create(name)))
            await asyncio.gather(*tasks)
            await self._all_bound(paced, 120)
            latencies = sorted(self.bound[n] - self.created[n] for n in paced)
            burst = [f"burst-{i:04d}" for i in range(count)]
            started = time.monotonic()
            await asyncio.gather(*(self._create(n) for n in burst))
            await self._all_bound(burst, 300)
            rate = count / (max(self.bound[n] for n in burst) - started)
        finally:
            watching.cancel()
            self.process.stop()
            self.emulator.stop()
        p50 = statistics.median(latencies)
        p99 = latencies[min(len(latencies) - 1, round(0.99 * len(latencies)) - 1)]
        return [
            metric(f"pvc_bound_p50_seconds_{self.kind}", p50, GOAL_P99, lower_is_better=True),
            metric(f"pvc_bound_p99_seconds_{self.kind}", p99, GOAL_P99, lower_is_better=True),
            metric(f"pvcs_per_second_{self.kind}", rate, GOAL_RATE, lower_is_better=False),
        ]


def fill(path: Path, size: int) -> None:
    block = os.urandom(16 * MiB)
    with path.open("wb") as f:
        for _ in range(size // len(block)):
            f.write(block)
        f.flush()
        os.fsync(f.fileno())


def timed(step: Any) -> float:
    os.sync()  # no op pays for writes still in the page cache
    started = time.monotonic()
    step()
    return time.monotonic() - started


def copies_bench(work: Path, large: int, runs: int) -> list[dict[str, Any]]:
    # A clone promises its full size, and the backend checks that against free space
    # (clones share blocks, but the contract accounts for them in full): room for the
    # large volume and one clone of it, on top of the 4 GiB the issue names.
    image = max(4 * GiB, 2 * (large + 64 * MiB) + 2 * GiB)
    fs = LoopBtrfs(work / "copies.img", work / "copies", size_bytes=image)
    fs.start()
    sizes = {"small": 10 * MiB, "large": large}
    times: dict[tuple[str, str], list[float]] = {}
    try:
        backend = BtrfsBackend("bench", fs.mountpoint)
        for label, size in sizes.items():
            backend.create_volume(f"vol-{label}", size + 64 * MiB)
            fill(backend.root / f"vol-{label}" / "data", size)
        # Interleaved, alternating which goes first: both sizes see the same filesystem.
        for i in range(runs):
            order = list(sizes) if i % 2 == 0 else list(reversed(sizes))
            for label in order:
                volume, size = f"vol-{label}", sizes[label] + 64 * MiB
                times.setdefault(("snapshot", label), []).append(
                    timed(lambda v=volume, n=i: backend.create_snapshot(v, f"snap-{n}"))
                )
            for label in order:
                volume, size = f"vol-{label}", sizes[label] + 64 * MiB
                times.setdefault(("clone", label), []).append(
                    timed(
                        lambda v=volume, n=i, s=size: backend.clone_volume(
                            v, f"{v}-clone-{n}", s, snapshot_id=f"snap-{n}"
                        )
                    )
                )
    finally:
        fs.stop()
    lines = []
    for op in ("snapshot", "clone"):
        small = statistics.median(times[(op, "small")])
        big = statistics.median(times[(op, "large")])
        lines.append(
            metric(
                f"btrfs_{op}_large_over_small",
                big / small,
                GOAL_O1,
                lower_is_better=True,
                small_seconds=round(small, 4),
                large_seconds=round(big, 4),
                sizes_bytes=[sizes["small"], large],
                image_bytes=image,
            )
        )
    return lines


async def claims(work: Path, count: int, with_btrfs: bool) -> list[dict[str, Any]]:
    nats = NatsServer(work / "nats")
    nats.start()
    results: list[dict[str, Any]] = []
    try:
        volumes = work / "dir-volumes"
        volumes.mkdir()
        results += await ClaimBench(work, nats, "dir", volumes).run(count)
        if with_btrfs:
            fs = LoopBtrfs(work / "claims.img", work / "claims-btrfs", size_bytes=GiB)
            fs.start()
            try:
                results += await ClaimBench(work, nats, "btrfs", fs.mountpoint).run(count)
            finally:
                fs.stop()
    finally:
        nats.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--claims", type=int, default=200, help="claims per phase and backend")
    parser.add_argument("--large-gib", type=float, default=2.0, help="data in the large volume")
    parser.add_argument("--runs", type=int, default=15, help="runs per snapshot/clone timing")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    why_not = btrfs_available()
    if why_not:
        print(f"btrfs parts skipped: {why_not}", file=sys.stderr)
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="vessel-bench-") as tmp:
        work = Path(tmp)
        results = asyncio.run(claims(work, args.claims, why_not is None))
        if why_not is None:
            results += copies_bench(work, int(args.large_gib * GiB), args.runs)
    for line in results:
        print(json.dumps(line))


if __name__ == "__main__":
    main()
