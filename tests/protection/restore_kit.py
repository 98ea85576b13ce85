"""A restore bench: protection's real restore flow over real NATS, a real S3 bucket and two
emulated clusters (`cluster-a` where backups come from, `cluster-b`), with backups written
into the bucket as the backup flow writes them."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.protection.agents import DirectClusters
from services.protection.bucket_catalog import (
    BackupCatalog,
    VolumeEntry,
    write_catalog,
    write_resources,
)
from services.protection.context import ProtectionContext
from services.protection.restore import RestoreFlow
from services.protection.state.operations import OperationStore
from tests.support import sealed
from vessel.bus.nats_port import Bus
from vessel.config import ConfigError
from vessel.contracts.commands import CreateRestore
from vessel.contracts.events import TransferResult, VolumeProvisioned
from vessel.contracts.operations import Operation
from vessel.contracts.protection import RestoreOptions
from vessel.kube.client import KubeCluster
from vessel.kube.objects import KubeObject
from vessel.objectstore.minio_port import MinioStore
from vessel.sealed.documents import SealedStore
from vessel_dev.emulators.kube import KubeEmulator

SNAPSHOT = "ab" * 32


def obj(kind: str, name: str, ns: str | None = "shop", api: str = "v1", **extra: Any) -> KubeObject:
    meta: dict[str, Any] = {"name": name, **extra.pop("meta", {})}
    if ns:
        meta["namespace"] = ns
    return {"apiVersion": api, "kind": kind, "metadata": meta, **extra}


def claim(name: str, ns: str = "shop", storage_class: str = "fast") -> KubeObject:
    spec = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}},
        "storageClassName": storage_class,
    }
    return obj("PersistentVolumeClaim", name, ns, spec=spec)


def storage_class(name: str) -> KubeObject:
    return obj("StorageClass", name, ns=None, api="storage.k8s.io/v1", provisioner="vessel.example")


def deployment(name: str, ns: str = "shop", **labels: str) -> KubeObject:
    return obj(
        "Deployment",
        name,
        ns,
        api="apps/v1",
        meta={"labels": {"app": name, **labels}},
        spec={
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "busybox"}]},
            },
        },
    )


def config_map(
    name: str, ns: str = "shop", data: dict[str, str] | None = None, **labels: str
) -> KubeObject:
    return obj("ConfigMap", name, ns, meta={"labels": labels}, data=data or {"k": "v"})


APP = [
    config_map("settings", data={"greeting": "hello"}, tier="front"),
    config_map("tuning", data={"level": "3"}),
    obj("Secret", "token", type="Opaque", data={"t": "c2VjcmV0"}),
    obj("Service", "web", spec={"ports": [{"port": 80}], "selector": {"app": "web"}}),
    deployment("web", tier="front"),
    deployment("worker"),
]


@dataclass
class Bench:
    p: ProtectionContext
    flow: RestoreFlow
    store: SealedStore
    bucket: str
    a: KubeCluster
    b: KubeCluster
    prefix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def write_backup(
        self,
        objects: list[KubeObject],
        claims: Sequence[str] = (),
        namespace: str = "shop",
        app: str = "shop",
    ) -> BackupCatalog:
        backup_id = f"backup-{uuid.uuid4().hex[:8]}"
        digest = write_resources(self.store, backup_id, objects)
        stamp = datetime.now(UTC)
        catalog = BackupCatalog(
            backup_id=backup_id,
            app_id=f"cluster-a.{namespace}.{app}-{self.prefix}",
            cluster="cluster-a",
            namespace=namespace,
            created=stamp,
            completed=stamp,
            resources_digest=digest,
            volumes=[
                VolumeEntry(namespace=namespace, claim=c, snapshot_id=SNAPSHOT, bytes=10)
                for c in claims
            ],
        )
        write_catalog(self.store, catalog)
        return catalog

    async def restore(
        self,
        backup: BackupCatalog,
        target: str = "cluster-b",
        mapping: dict[str, str] | None = None,
        **options: Any,
    ) -> Operation:
        """Run the restore command as the service would and return the operation."""
        cmd = CreateRestore(
            operation_id=f"restore-{uuid.uuid4().hex[:8]}",
            backup_id=backup.backup_id,
            bucket=self.bucket,
            target_cluster=target,
            namespace_mapping=mapping or {},
            options=RestoreOptions.model_validate(options),
        )
        await self.flow.on_command(cmd)
        return await self.operation(cmd.operation_id)

    async def operation(self, op_id: str) -> Operation:
        op = await self.p.operations.get(op_id)
        assert op is not None
        return op

    async def provisioned(self, op: Operation, claim: str, namespace: str) -> None:
        """What the target's provisioner announces once it bound the claim."""
        await self.flow.on_volume(
            VolumeProvisioned(
                cluster=op.target_cluster,
                namespace=namespace,
                claim=claim,
                pv_name=f"pv-{claim}",
                volume_id=f"vol-{claim}",
                backend="local",
                backend_type="dir",
                size_bytes=1 << 30,
                path=f"/volumes/{claim}",
            )
        )

    async def filled(self, op: Operation, claim: str, error: str = "") -> None:
        """What the target's mover announces once it wrote the volume."""
        await self.flow.on_transfer(
            TransferResult(
                transfer_id=f"{op.id}-{claim}",
                operation_id=op.id,
                cluster=op.target_cluster,
                direction="restore",
                bytes=10,
                snapshot_id=SNAPSHOT,
                error=error,
            )
        )


def kinds_in(items: list[Any], state: str) -> list[str]:
    return sorted(f"{i.kind}/{i.name}" for i in items if i.state == state)


@contextlib.asynccontextmanager
async def bench(bus: Bus, bucket: MinioStore, tmp_path: Path) -> AsyncIterator[Bench]:
    emulators: list[KubeEmulator] = []
    clusters = {}
    try:
        for name in ("cluster-a", "cluster-b"):
            emulator = KubeEmulator()
            emulator.start()
            emulators.append(emulator)
            emulator.write_kubeconfig(tmp_path / f"{name}.kubeconfig")
            clusters[name] = KubeCluster(tmp_path / f"{name}.kubeconfig", name)
        suffix = uuid.uuid4().hex[:8]
        bucket_name = "backups"

        sb = sealed(bucket)

        def open_bucket(name: str) -> SealedStore:
            if name != bucket_name:
                raise ConfigError(f"bucket {name!r} is not configured")
            return sb

        p = ProtectionContext(
            bus=bus,
            clusters=DirectClusters(clusters),
            open_bucket=open_bucket,
            operations=OperationStore(await bus.kv(f"operations-{suffix}")),
            inventory=await bus.kv(f"inventory-{suffix}"),
            waits=await bus.kv(f"waits-{suffix}"),
        )
        yield Bench(
            p, RestoreFlow(p), sb, bucket_name, clusters["cluster-a"], clusters["cluster-b"]
        )
    finally:
        for emulator in emulators:
            await asyncio.to_thread(emulator.stop)
