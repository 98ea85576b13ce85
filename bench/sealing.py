"""The cost of sealing a backup's documents, measured on an S3 bucket.

A backup stores its resource archive, its sealed record and its listing entry. This
measures writing them sealed (as protection does) against writing the same JSON in
plaintext (as Vessel did before sealing), for an app of `objects` Kubernetes objects.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from services.protection.bucket_catalog import (
    BackupCatalog,
    VolumeEntry,
    read_backup,
    write_catalog,
    write_resources,
)
from vessel.objectstore.minio_port import MinioStore
from vessel.sealed.documents import SealedStore
from vessel.sealed.keys import MasterKey

REPEAT = 5


def app_objects(count: int) -> list[dict[str, Any]]:
    kinds = ("ConfigMap", "Secret", "Service", "Deployment")
    return [
        {
            "apiVersion": "v1",
            "kind": kinds[i % len(kinds)],
            "metadata": {"name": f"object-{i}", "namespace": "shop", "labels": {"app": "shop"}},
            "data": {f"key-{k}": "value " * 40 for k in range(8)},
        }
        for i in range(count)
    ]


def _record(backup_id: str, digest: str) -> BackupCatalog:
    stamp = datetime.now(UTC)
    return BackupCatalog(
        backup_id=backup_id,
        app_id="cluster-a.shop.shop",
        cluster="cluster-a",
        namespace="shop",
        namespaces=["shop"],
        created=stamp,
        completed=stamp,
        resources_digest=digest,
        volumes=[
            VolumeEntry(namespace="shop", claim=f"c{i}", snapshot_id="a" * 64, bytes=1)
            for i in range(4)
        ],
    )


def documents_seconds(store: MinioStore, objects: int) -> tuple[float, float]:
    """(sealed, plaintext): best of REPEAT seconds to write one backup's documents."""
    sb = SealedStore(store, MasterKey.generate())
    items = app_objects(objects)
    sealed = plain = float("inf")
    for run in range(REPEAT):
        backup_id = f"sealed-{run}"
        started = time.monotonic()
        digest = write_resources(sb, backup_id, items)
        write_catalog(sb, _record(backup_id, digest))
        sealed = min(sealed, time.monotonic() - started)
        assert read_backup(sb, backup_id)[1] == items

        started = time.monotonic()
        archive = json.dumps({"format": "vessel.resources/1", "items": items}).encode()
        store.put_bytes(f"backups/plain-{run}/resources.json", archive)
        record = _record(f"plain-{run}", "0" * 64).model_dump_json().encode()
        store.put_bytes(f"backups/plain-{run}/backup.json", record)
        plain = min(plain, time.monotonic() - started)
    return sealed, plain
