"""The backup catalog inside the bucket, so a fresh Vessel can restore from the bucket alone.

Layout under `backups/<backup-id>/`: `resources.json` (sanitized objects) and
`backup.json` written last: a backup without `backup.json` is incomplete (volume data
lives in the bucket's repository). App snapshots keep their resource archive under
`snapshots/<snapshot-id>/resources.json`; a backup copies it into its own prefix.
Readers ignore fields they do not know, so fields added to `vessel.backup/1` later (all
optional) keep older catalogs and older readers working.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vessel.objectstore.base import ObjectStore

FORMAT = "vessel.backup/1"


class CatalogError(Exception):
    pass


class VolumeEntry(BaseModel):
    model_config = ConfigDict(extra="ignore")
    namespace: str
    claim: str
    snapshot_id: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)


class BackupCatalog(BaseModel):
    model_config = ConfigDict(extra="ignore")
    format: Literal["vessel.backup/1"] = "vessel.backup/1"
    backup_id: str
    app_id: str
    cluster: str
    namespace: str
    created: datetime
    completed: datetime
    resources_key: str
    volumes: list[VolumeEntry]
    snapshot_id: str | None = Field(None, description="The app snapshot the backup copied")
    namespaces: list[str] = Field(default_factory=list, description="Every namespace it holds")


def prefix(backup_id: str) -> str:
    return f"backups/{backup_id}"


def snapshot_prefix(snapshot_id: str) -> str:
    return f"snapshots/{snapshot_id}"


def _write_archive(store: ObjectStore, key: str, objects: list[dict[str, Any]]) -> str:
    store.put_bytes(key, json.dumps({"format": "vessel.resources/1", "items": objects}).encode())
    return key


def write_resources(store: ObjectStore, backup_id: str, objects: list[dict[str, Any]]) -> str:
    return _write_archive(store, f"{prefix(backup_id)}/resources.json", objects)


def write_snapshot_resources(
    store: ObjectStore, snapshot_id: str, objects: list[dict[str, Any]]
) -> str:
    return _write_archive(store, f"{snapshot_prefix(snapshot_id)}/resources.json", objects)


def read_archive(store: ObjectStore, key: str) -> bytes:
    """A resource archive as stored, checked to be one (for copying it elsewhere)."""
    data = store.get_bytes(key)
    read_resources_bytes(key, data)
    return data


def copy_resources(store: ObjectStore, backup_id: str, archive: bytes) -> str:
    key = f"{prefix(backup_id)}/resources.json"
    store.put_bytes(key, archive)
    return key


def read_resources(store: ObjectStore, key: str) -> list[dict[str, Any]]:
    return read_resources_bytes(key, store.get_bytes(key))


def read_resources_bytes(key: str, data: bytes) -> list[dict[str, Any]]:
    try:
        doc = json.loads(data)
        items = doc["items"]
        if doc.get("format") != "vessel.resources/1" or not isinstance(items, list):
            raise ValueError("unknown format")
    except (ValueError, KeyError, TypeError) as exc:
        raise CatalogError(f"{key}: not a Vessel resource archive ({exc})") from exc
    return items


def write_catalog(store: ObjectStore, catalog: BackupCatalog) -> None:
    store.put_bytes(f"{prefix(catalog.backup_id)}/backup.json", catalog.model_dump_json().encode())


def read_catalog(store: ObjectStore, backup_id: str) -> BackupCatalog:
    key = f"{prefix(backup_id)}/backup.json"
    try:
        return BackupCatalog.model_validate_json(store.get_bytes(key))
    except ValidationError as exc:
        raise CatalogError(f"{key}: invalid backup catalog: {exc.errors()[0]['msg']}") from exc
