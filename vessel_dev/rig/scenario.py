"""The walking-skeleton scenario shared by the demo and the end-to-end test:
an app with a volume in cluster A, backed up, restored into cluster B, bytes compared."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
from pathlib import Path
from typing import Any

from vessel.kube.client import KubeCluster
from vessel_dev.rig.stack import STORAGE_CLASS

NAMESPACE = "shop"
APP = "shop"
CLAIM = "shop-data"


def claim_object(name: str, namespace: str, labels: dict[str, str], size: str) -> dict[str, Any]:
    """A ReadWriteOnce claim of the rig's StorageClass."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": STORAGE_CLASS,
            "resources": {"requests": {"storage": size}},
        },
    }


def deployment_object(
    name: str,
    namespace: str,
    labels: dict[str, str],
    container: dict[str, Any],
    claims: dict[str, str],
) -> dict[str, Any]:
    """One replica of `container`, with a volume for each claim (`{volume: claim}`)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [container],
                    "volumes": [
                        {"name": volume, "persistentVolumeClaim": {"claimName": claim}}
                        for volume, claim in claims.items()
                    ],
                },
            },
        },
    }


def app_objects(namespace: str = NAMESPACE, size: str = "64Mi") -> list[dict[str, Any]]:
    labels = {"app": APP}
    db = {
        "name": "db",
        "image": "postgres:17",
        "volumeMounts": [{"name": "data", "mountPath": "/var/lib/data"}],
    }
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "shop-config", "namespace": namespace, "labels": labels},
            "data": {"greeting": "hello from cluster a"},
        },
        claim_object(CLAIM, namespace, labels, size),
        deployment_object("shop-db", namespace, labels, db, {"data": CLAIM}),
    ]


async def create_all(kube: KubeCluster, objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        await kube.create(obj)


async def bound_volume_path(
    kube: KubeCluster, namespace: str, claim: str, within: float = 30
) -> Path:
    """Wait until the claim is Bound; the node-local path of its volume."""
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        pvc = await kube.get("v1", "PersistentVolumeClaim", claim, namespace)
        if pvc and pvc.get("status", {}).get("phase") == "Bound":
            pv = await kube.get("v1", "PersistentVolume", pvc["spec"]["volumeName"])
            assert pv is not None
            return Path(pv["spec"]["hostPath"]["path"])
        await asyncio.sleep(0.1)
    raise TimeoutError(f"claim {namespace}/{claim} not bound after {within:.0f}s")


async def create_app_with_data(kube: KubeCluster) -> dict[str, str]:
    """The app created in `kube`, its bound volume filled by `write_data`; the tree's digest."""
    await create_all(kube, app_objects())
    path = await bound_volume_path(kube, NAMESPACE, CLAIM)
    write_data(path)
    return tree_digest(path)


def write_data(root: Path, seed: int = 7) -> None:
    """A small but varied tree: a large file, nested small files, an empty file, a symlink."""
    rng = random.Random(seed)
    (root / "db").mkdir(exist_ok=True)
    (root / "db" / "table.dat").write_bytes(rng.randbytes(12 << 20))
    logs = root / "logs" / "2026" / "11"
    logs.mkdir(parents=True, exist_ok=True)
    for i in range(50):
        (logs / f"app-{i:03d}.log").write_text(f"line {i}\n" * rng.randint(1, 400))
    (root / "empty").write_bytes(b"")
    (root / "current").symlink_to("logs/2026/11/app-049.log")
    (root / "db" / "table.dat").chmod(0o640)


def tree_digest(root: Path) -> dict[str, str]:
    """Path → digest of content (files), target (links) or mode (dirs)."""
    result = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            if full.is_symlink():
                result[rel] = "link:" + os.readlink(full)
            elif full.is_dir():
                result[rel] = f"dir:{full.stat().st_mode & 0o7777:o}"
            else:
                digest = hashlib.sha256(full.read_bytes()).hexdigest()
                result[rel] = f"file:{full.stat().st_mode & 0o7777:o}:{digest}"
    return result
