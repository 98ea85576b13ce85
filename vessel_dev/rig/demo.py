"""`vessel-embedded`: start the embedded default and walk one app from cluster A to cluster B.

Every step is real: NATS JetStream, an S3 server, volumes on btrfs (as root with
btrfs-progs) or plain directories, and every Vessel service as its own process. Only the
Kubernetes API servers are emulated (over real HTTPS, driven by the official client; kubectl
works against them too).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc

from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc
from vessel.kube.client import KubeCluster
from vessel_cli.main import main as cli
from vessel_dev.rig.scenario import (
    APP,
    CLAIM,
    NAMESPACE,
    app_objects,
    bound_volume_path,
    create_all,
    tree_digest,
    write_data,
)
from vessel_dev.rig.stack import Stack, wait_for
from vessel_dev.rig.supervisor import Supervisor

TARGET_NAMESPACE = "shop-restored"


def app_ready(endpoint: str, app_id: str) -> bool:
    """The app is in the inventory and its claims are bound."""
    with grpc.insecure_channel(endpoint) as channel:
        try:
            app = rpc.AppServiceStub(channel).GetApp(pb.GetAppRequest(id=app_id))
        except grpc.RpcError:
            return False
    return bool(app.claims) and all(c.volume_name for c in app.claims)


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


async def walk(stack: Stack) -> bool:
    a = KubeCluster(stack.kubeconfigs["cluster-a"], "cluster-a")
    b = KubeCluster(stack.kubeconfigs["cluster-b"], "cluster-b")
    endpoint = ["--endpoint", stack.gateway, "--token", ""]  # the embedded gateway is open
    step("StorageClass 'vessel-local' in both clusters; app 'shop' in cluster-a")
    for kube in (a, b):
        await kube.create(stack.storage_class())
    await create_all(a, app_objects())
    source = await bound_volume_path(a, NAMESPACE, CLAIM)
    print(f"claim {NAMESPACE}/{CLAIM} bound; {stack.backend_types['cluster-a']} volume at {source}")
    step("Writing data into the volume")
    write_data(source)
    before = tree_digest(source)
    size = sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
    print(f"{len(before)} entries, {size} bytes")
    app_id = f"cluster-a.{NAMESPACE}.{APP}"
    step(f"Discovery: waiting for app {app_id} with its bound claim")
    await asyncio.to_thread(wait_for, lambda: app_ready(stack.gateway, app_id), 30, "the app")
    await asyncio.to_thread(cli, [*endpoint, "app", "list"])
    step("Backup through the gateway (vessel backup create ... --wait)")
    if (
        await asyncio.to_thread(
            cli,
            [
                *endpoint,
                "backup",
                "create",
                app_id,
                "--bucket",
                "default",
                "--request-id",
                "demo",
                "--wait",
            ],
        )
        != 0
    ):
        return False
    step(f"Restore into cluster-b, namespace {NAMESPACE} -> {TARGET_NAMESPACE}")
    if (
        await asyncio.to_thread(
            cli,
            [
                *endpoint,
                "restore",
                "create",
                "backup-demo",
                "--bucket",
                "default",
                "--to-cluster",
                "cluster-b",
                "--namespace-map",
                f"{NAMESPACE}:{TARGET_NAMESPACE}",
                "--request-id",
                "demo",
                "--wait",
            ],
        )
        != 0
    ):
        return False
    target = await bound_volume_path(b, TARGET_NAMESPACE, CLAIM)
    deployment = await b.get("apps/v1", "Deployment", "shop-db", TARGET_NAMESPACE)
    print(
        f"cluster-b: claim bound to {stack.backend_types['cluster-b']} volume {target}; "
        f"deployment {'present' if deployment else 'MISSING'}"
    )
    step("Byte comparison of the original and the restored volume")
    after = tree_digest(target)
    same = before == after
    differing = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    verdict = "IDENTICAL" if same else "DIFFERENT: " + ", ".join(differing[:10])
    print(f"{len(before)} entries compared: {verdict}")
    return same and deployment is not None


def serve_until_interrupted(stack: Stack) -> Supervisor:
    """Keep the stack up for the CLI, starting again any service that exits, until Ctrl-C
    or SIGTERM; returns the supervisor, which knows what exited."""
    step("Running for the CLI (Ctrl-C stops everything)")
    print(f"export VESSEL_ENDPOINT={stack.gateway}")
    print(f"export VESSEL_NATS_URL={stack.nats.url}")
    for cluster, kubeconfig in stack.kubeconfigs.items():
        print(f"export KUBECONFIG={kubeconfig}  # kubectl against {cluster}")
    supervisor = Supervisor(stack.services, say=lambda text: print(text, flush=True))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            supervisor.check()
    except KeyboardInterrupt:
        pass
    return supervisor


def dead_services(stack: Stack) -> list[str]:
    """Services that are not running, each with its exit code."""
    return [
        f"{p.name} (exit code {p.popen.returncode if p.popen else None})"
        for p in stack.services
        if not p.alive()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="vessel-embedded", description=__doc__)
    parser.add_argument(
        "--workdir", type=Path, help="keep state here (default: a temporary directory)"
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="after the walk, keep everything running for the CLI until Ctrl-C",
    )
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="vessel-embedded-"))
    started = time.monotonic()
    step(f"Starting NATS, S3, two emulated Kubernetes API servers and all services in {workdir}")
    ok = False
    try:
        with Stack(workdir) as stack:
            print(
                f"NATS {stack.nats.url}, S3 {stack.s3.endpoint}, gateway {stack.gateway}, "
                f"clusters {', '.join(f'{c}={e.url}' for c, e in stack.clusters.items())}"
            )
            try:
                ok = asyncio.run(walk(stack))
                if dead := dead_services(stack):  # the walk may pass around a dead service
                    print(f"services exited during the walk: {', '.join(dead)}")
                    ok = False
            finally:
                if not ok:
                    print(stack.logs(), file=sys.stderr)
            if ok and args.keep:
                supervisor = serve_until_interrupted(stack)
                print(supervisor.summary())
                ok = not supervisor.exits
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n{'PASSED' if ok else 'FAILED'} in {time.monotonic() - started:.1f}s")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
