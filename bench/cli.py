"""CLI benchmark: the wall time of one `vessel app list` against a running gateway, from the
process starting to it exiting (what a person or a script waits for).

Run: `.venv/bin/python bench/cli.py [--runs 20]`.
Starts the embedded stack (NATS, S3, two emulated clusters, every service as its own
process) with one app in cluster-a, then runs `vessel app list` `--runs` times as a
subprocess and takes the median. The peer is `kubectl get pvc -A` against cluster-a's
emulated API server, run the same way, when kubectl is on PATH and can read that server;
otherwise the peer is the bare interpreter start (`python -c pass`), the floor any Python
CLI pays. ratio = vessel / peer (< 1 is faster than the peer). Goal: vessel < 0.25 s.
The measured runs may write bytecode caches (as an installed CLI has them), even where
PYTHONDONTWRITEBYTECODE is set for this process; the unmeasured warm-up writes them.
Ends with one JSON line per metric.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vessel.kube.client import KubeCluster  # noqa: E402
from vessel_dev.rig.scenario import APP, NAMESPACE, app_objects, create_all  # noqa: E402
from vessel_dev.rig.stack import Stack, wait_for  # noqa: E402

GOAL_SECONDS = 0.25
CLIENT_VARIABLES = ("VESSEL_TOKEN", "VESSEL_TLS", "VESSEL_TLS_CA", "VESSEL_TLS_CERT")
"""Settings of the caller's own CLI that must not leak into the measured one."""


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def vessel_command() -> list[str]:
    """The installed `vessel` script next to this interpreter, as a user runs it."""
    script = Path(sys.executable).parent / "vessel"
    return [str(script)] if script.exists() else [sys.executable, "-m", "vessel_cli.main"]


def timed(argv: list[str], env: dict[str, str], runs: int) -> float:
    """Median wall seconds of `runs` runs of `argv` (after one unmeasured warm-up)."""
    times = []
    for n in range(runs + 1):
        started = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr[-500:]}")
        if n:
            times.append(elapsed)
    return statistics.median(times)


def peer(kubeconfig: Path, env: dict[str, str], runs: int) -> tuple[str, float]:
    kubectl = shutil.which("kubectl")
    if kubectl:
        argv = [kubectl, "get", "pvc", "-A", "--kubeconfig", str(kubeconfig)]
        try:
            return "kubectl", timed(argv, env, runs)
        except RuntimeError as exc:
            log(f"kubectl cannot read the emulated API server ({exc}); peer: python -c pass")
    else:
        log("kubectl is not on PATH; peer: python -c pass")
    return "python-startup", timed([sys.executable, "-c", "pass"], env, runs)


async def add_app(stack: Stack) -> None:
    kube = KubeCluster(stack.kubeconfigs["cluster-a"], "cluster-a")
    await kube.create(stack.storage_class())
    await create_all(kube, app_objects())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="vessel-bench-cli-"))
    try:
        log(f"starting the embedded stack in {workdir}")
        with Stack(workdir, btrfs=False) as stack:
            asyncio.run(add_app(stack))
            env = {k: v for k, v in os.environ.items() if k not in CLIENT_VARIABLES}
            # An installed CLI runs from cached bytecode; where writing it is turned off,
            # every call would compile its modules again and that is what we would measure.
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env |= {
                "VESSEL_ENDPOINT": stack.gateway,
                "VESSEL_CLI_CONFIG": str(workdir / "no-cli-config.yaml"),
            }
            command = [*vessel_command(), "app", "list"]
            app_id = f"cluster-a.{NAMESPACE}.{APP}"

            def listed() -> bool:
                done = subprocess.run(command, env=env, capture_output=True, text=True)
                return done.returncode == 0 and app_id in done.stdout

            wait_for(listed, 60, f"app {app_id} in `vessel app list`")
            vessel = timed(command, env, args.runs)
            peer_name, peer_value = peer(stack.kubeconfigs["cluster-a"], env, args.runs)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    log(f"vessel app list: median {vessel:.3f}s over {args.runs} runs (goal {GOAL_SECONDS}s)")
    print(
        json.dumps(
            {
                "metric": "cli_app_list_seconds",
                "vessel": round(vessel, 3),
                "peer": peer_name,
                "peer_value": round(peer_value, 3),
                "ratio": round(vessel / peer_value, 2),
                "goal": GOAL_SECONDS,
                "runs": args.runs,
            }
        )
    )


if __name__ == "__main__":
    main()
