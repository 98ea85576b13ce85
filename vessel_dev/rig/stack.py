"""The embedded default: NATS, S3, two emulated clusters with local backends, and every
Vessel service as its own process. Used by the demo and by the end-to-end tests."""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import yaml

from vessel.api.v1 import infra_pb2 as ipb
from vessel.api.v1 import infra_pb2_grpc as irpc
from vessel.config import PROVISIONER_NAME
from vessel.objectstore.minio_port import MinioStore
from vessel.sealed.documents import SealedStore
from vessel.sealed.keys import open_master_key
from vessel.sealed.providers.password import PasswordKey
from vessel_dev.emulators.kube import KubeEmulator
from vessel_dev.rig.btrfs import LoopBtrfs, btrfs_available
from vessel_dev.rig.nats_topology import NatsTopology
from vessel_dev.rig.processes import Process, free_port, port_open, wait_until
from vessel_dev.rig.servers import S3, Nats, new_s3

CLUSTERS = ("cluster-a", "cluster-b")
BUCKET = "vessel-backups"
STORAGE_CLASS = "vessel-local"
AGENT_WAIT_SECONDS = 15.0
"""How long protection waits for an agent that is not there (shorter than the default,
so a test of an agent away ends sooner)."""


@dataclass
class Stack:
    workdir: Path
    btrfs: bool | None = None
    """True: btrfs required; False: dir backends only; None: btrfs for cluster-a when possible."""
    nats: Nats = field(init=False)
    """The hub's NATS server."""
    topology: NatsTopology = field(init=False)
    shared_s3: S3 | None = None
    """An S3 server started elsewhere (kept running at stop): two Vessels, one bucket."""
    s3: S3 = field(init=False)
    clusters: dict[str, KubeEmulator] = field(default_factory=dict)
    kubeconfigs: dict[str, Path] = field(default_factory=dict)
    backend_types: dict[str, str] = field(default_factory=dict)
    filesystems: list[LoopBtrfs] = field(default_factory=list)
    services: list[Process] = field(default_factory=list)
    metrics: dict[str, str] = field(default_factory=dict)
    """Prometheus endpoint (host:port) of each service process, by name."""
    gateway: str = ""
    config_path: Path = field(init=False)
    """The configuration of the cluster agents (every cluster with its kubeconfig)."""
    hub_config_path: Path = field(init=False)
    """The hub services' configuration: no cluster, no kubeconfig."""
    repository_password: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    otlp_endpoint: str | None = None
    """OTLP/gRPC collector every service exports its trace spans to; None: not exported."""
    capacity_bytes: int = 512 << 20
    """Capacity of each cluster's backend (a btrfs image is made 512 MiB larger)."""

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.topology = NatsTopology(self.workdir, CLUSTERS)
        self.topology.start()
        self.nats = self.topology.hub
        if self.shared_s3 is not None:
            self.s3 = self.shared_s3
            self._bucket_ready()
        else:
            self.s3 = new_s3(self.workdir)
            self.s3.start(ready=self._bucket_ready)
        backends = {cid: self._backend(cid, i) for i, cid in enumerate(CLUSTERS)}
        for cid in CLUSTERS:
            real = os.environ.get(f"VESSEL_KUBECONFIG_{cid.upper().replace('-', '_')}")
            if real:  # a real API server: the same scenario, no emulator
                self.kubeconfigs[cid] = Path(real)
                continue
            emulator = KubeEmulator(allow_exec=True)  # execution hooks run in its pods
            emulator.start()
            self.clusters[cid] = emulator
            self.kubeconfigs[cid] = self.workdir / f"{cid}.kubeconfig"
            emulator.write_kubeconfig(self.kubeconfigs[cid], context=cid)
        self.gateway = f"127.0.0.1:{free_port()}"
        self.config_path = self.workdir / "vessel.yaml"
        self.config_path.write_text(yaml.safe_dump(self.config(backends)))
        # The hub's services know the clusters only from what their agents report: their
        # configuration names no cluster, so no hub process can open a kubeconfig.
        self.hub_config_path = self.workdir / "vessel-hub.yaml"
        hub = {**self.config(backends), "clusters": [], "secrets_cluster": CLUSTERS[0]}
        hub["agent_wait_seconds"] = AGENT_WAIT_SECONDS
        self.hub_config_path.write_text(yaml.safe_dump(hub))
        for argv in self._service_commands():
            cluster = argv[-1] if "--cluster" in argv else None
            self._start(argv, {} if cluster else {"VESSEL_CONFIG": str(self.hub_config_path)})
        port = int(self.gateway.rsplit(":", 1)[1])

        def up() -> bool:
            ready = all(_ready(address) for address in self.metrics.values())
            return (ready and port_open(port)) or self._crashed() is not None

        wait_until(up, 60, "every service connected and the gateway listening")
        if crashed := self._crashed():
            raise RuntimeError(f"service {crashed.name} exited:\n{crashed.tail()}")
        wait_until(self._agents_reported, 30, "every cluster's agent reported to the hub")

    def _start(self, argv: list[str], environ: dict[str, str]) -> Process:
        service = argv[2].split(".")[1]
        cluster = argv[-1] if "--cluster" in argv else None
        name = f"{service}-{cluster}" if cluster else service
        self.metrics[name] = f"127.0.0.1:{free_port()}"
        env = {
            **self.env(),
            **environ,
            "VESSEL_METRICS_LISTEN": self.metrics[name],
            **self.topology.environ_for(service, cluster),
        }
        proc = Process(name, argv, self.workdir / f"{name}.log", env=env)
        proc.start()
        self.services.append(proc)
        return proc

    def join(self, cluster: str, kubeconfig: Path, token: str) -> list[Process]:
        """A cluster joining at run time: its leaf NATS dials the hub with `token`, and its
        agents (discovery, provisioner and mover with a directory backend) connect to that
        leaf, configured with `kubeconfig` as their own ServiceAccount's."""
        leaf = self.topology.join(cluster, token)
        backend = {"name": f"{cluster}-local", "type": "dir", "path": str(self.workdir / cluster)}
        Path(backend["path"]).mkdir(parents=True, exist_ok=True)
        config = {
            "nats_url": leaf.url,
            "clusters": [
                {
                    "id": cluster,
                    "kubeconfig": str(kubeconfig),
                    "agent": "cluster",
                    "backends": [{**backend, "capacity_bytes": self.capacity_bytes}],
                }
            ],
            "buckets": yaml.safe_load(self.config_path.read_text())["buckets"],
        }
        path = self.workdir / f"vessel-{cluster}.yaml"
        path.write_text(yaml.safe_dump(config))
        py = [sys.executable, "-m"]
        return [
            self._start([*py, f"services.{s}", "--cluster", cluster], {"VESSEL_CONFIG": str(path)})
            for s in ("discovery", "provisioner", "mover")
        ]

    def _agents_reported(self) -> bool:
        with grpc.insecure_channel(self.gateway) as channel:
            listed = irpc.ClusterServiceStub(channel).ListClusters(ipb.ListClustersRequest())
        return {c.id for c in listed.clusters if c.source == "agent"} >= set(CLUSTERS)

    def _crashed(self) -> Process | None:
        return next((p for p in self.services if not p.alive()), None)

    def _bucket_ready(self) -> bool:
        store = MinioStore(self.s3.endpoint, BUCKET, self.s3.access_key, self.s3.secret_key)
        store.ensure_bucket()
        store.put_bytes(".ready", b"")
        return True

    def _backend(self, cluster: str, index: int) -> dict[str, Any]:
        use_btrfs = (
            self.btrfs if self.btrfs is not None else (index == 0 and btrfs_available() is None)
        )
        if use_btrfs:
            fs = LoopBtrfs(
                self.workdir / f"{cluster}.img",
                self.workdir / f"{cluster}-btrfs",
                size_bytes=max(1 << 30, self.capacity_bytes + (512 << 20)),
            )
            self.filesystems.append(fs)
            fs.start()
            path, kind = fs.mountpoint, "btrfs"
        else:
            path, kind = self.workdir / f"{cluster}-volumes", "dir"
            path.mkdir(parents=True, exist_ok=True)
        self.backend_types[cluster] = kind
        return {
            "name": f"{cluster}-local",
            "type": kind,
            "path": str(path),
            "capacity_bytes": self.capacity_bytes,
        }

    def config(self, backends: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return {
            "nats_url": self.nats.url,
            "gateway_listen": self.gateway,
            "clusters": [
                {
                    "id": c,
                    "kubeconfig": str(self.kubeconfigs[c]),
                    "agent": "cluster",  # its own discovery, on its leaf, is its agent
                    "backends": [backends[c]],
                }
                for c in CLUSTERS
            ],
            "buckets": [{"name": "default", "endpoint": self.s3.endpoint, "bucket": BUCKET}],
        }

    def env(self) -> dict[str, str]:
        tracing = {"VESSEL_OTLP_ENDPOINT": self.otlp_endpoint} if self.otlp_endpoint else {}
        return {
            **os.environ,
            **tracing,
            # The embedded default runs the gateway open: it listens on loopback only.
            "VESSEL_GATEWAY_AUTH__REQUIRED": "false",
            "VESSEL_ADMIN_TOKEN": "",  # a token in the caller's environment would close it
            "VESSEL_CONFIG": str(self.config_path),
            "VESSEL_S3_ACCESS_KEY": self.s3.access_key,
            "VESSEL_S3_SECRET_KEY": self.s3.secret_key,
            "VESSEL_REPOSITORY_PASSWORD": self.repository_password,
        }

    def _service_commands(self) -> list[list[str]]:
        py = [sys.executable, "-m"]
        commands = [
            [*py, "services.discovery"],
            [*py, "services.protection"],
            [*py, "services.gateway"],
        ]
        for cid in CLUSTERS:
            commands += [
                [*py, "services.discovery", "--cluster", cid],
                [*py, "services.provisioner", "--cluster", cid],
                [*py, "services.mover", "--cluster", cid],
            ]
        return commands

    def storage_class(self, name: str = STORAGE_CLASS) -> dict[str, Any]:
        return {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": name},
            "provisioner": PROVISIONER_NAME,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
            "allowVolumeExpansion": True,
        }

    def store(self) -> MinioStore:
        return MinioStore(self.s3.endpoint, BUCKET, self.s3.access_key, self.s3.secret_key)

    def sealed(self) -> SealedStore:
        """The default bucket with its master key, to read what Vessel sealed there."""
        store = self.store()
        return SealedStore(
            store, open_master_key(store, "repository", PasswordKey(self.repository_password))
        )

    def stop(self) -> None:
        for proc in reversed(self.services):
            proc.stop()
        for emulator in self.clusters.values():
            emulator.stop()
        own_s3 = getattr(self, "s3", None) if self.shared_s3 is None else None
        if own_s3 is not None:
            own_s3.stop()
        if hasattr(self, "topology"):
            self.topology.stop()
        for fs in self.filesystems:
            fs.stop()

    def logs(self) -> str:
        out = io.StringIO()
        for proc in self.services:
            with contextlib.suppress(OSError):
                out.write(f"--- {proc.name}\n{proc.tail(40)}\n")
        return out.getvalue()


def _ready(address: str) -> bool:
    """The service's /readyz answers 200: it is connected to NATS."""
    try:
        with urllib.request.urlopen(f"http://{address}/readyz", timeout=2) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def wait_for(check: Any, timeout: float, what: str) -> Any:
    """Poll `check()` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
