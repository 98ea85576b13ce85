"""Kubernetes emulator benchmark: ConfigMap creates per second through the official
client over HTTPS, the path every test and the embedded platform take.

Run: `.venv/bin/python bench/emulator.py [--count 300]`. There is no peer that runs on
this machine (a real kube-apiserver needs etcd and a cluster), so the peer is the goal,
500 creates/s; ratio = vessel / goal (> 1 beats it). Ends with one JSON line per metric.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from kubernetes import client, config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vessel_dev.emulators.kube import KubeEmulator  # noqa: E402

GOAL = 500.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=300)
    count = parser.parse_args().count
    emulator = KubeEmulator()
    emulator.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            kubeconfig = Path(tmp) / "kubeconfig"
            emulator.write_kubeconfig(kubeconfig)
            core = client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))
            core.create_namespace({"metadata": {"name": "bench"}})
            started = time.perf_counter()
            for i in range(count):
                core.create_namespaced_config_map("bench", {"metadata": {"name": f"cm-{i}"}})
            rate = count / (time.perf_counter() - started)
    finally:
        emulator.stop()
    print(f"{count} creates: {rate:.0f}/s")
    print(
        json.dumps(
            {
                "metric": "emulator_creates_per_second",
                "vessel": round(rate, 1),
                "peer": "goal",
                "peer_value": GOAL,
                "ratio": round(rate / GOAL, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
