"""The backup catalog inside the bucket, so a fresh Vessel can restore from the bucket alone.

Layout under `backups/<backup-id>/` (docs/formats.md):
- `resources.sealed`: the app's objects, sealed (role `resources`, owner the backup id);
- `backup.sealed`: the backup record (`vessel.backup/2`), sealed (role `backup`), naming
  the digest of `resources.sealed` and each volume's repository snapshot;
- `backup.json`: the listing entry, unsealed, written last: a backup without it is
  incomplete. It holds only what the gateway lists and checks scopes with, and a restore
  refuses a backup whose listing disagrees with its sealed record.
App snapshots keep their archive in `snapshots/<snapshot-id>/resources.sealed` (role
`snapshot-resources`); a backup re-seals it as its own. Backups written before sealing
(`vessel.backup/1`: plaintext `backup.json` and `resources.json`) are listed, and restored
only when the request trusts unsealed backups explicitly.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vessel.contracts.state import (
    BACKUP_LISTING,
    BACKUP_RECORD,
    RESOURCES,
    backup_key,
    snapshot_resources_key,
)
from vessel.kube.objects import KubeObject
from vessel.objectstore.base import ObjectStore
from vessel.sealed.documents import SealedStore
from vessel.sealed.errors import SealError

FORMAT = "vessel.backup/2"
LEGACY_FORMAT = "vessel.backup/1"
RESOURCES_FORMAT = "vessel.resources/1"


class CatalogError(Exception):
    """A backup's documents cannot be used; the message names the object and why."""


class UnsealedBackup(CatalogError):
    """A backup written before sealing: nothing proves it is what Vessel wrote."""


class VolumeEntry(BaseModel):
    model_config = ConfigDict(extra="ignore")
    namespace: str
    claim: str
    snapshot_id: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)


class ListedVolume(BaseModel):
    model_config = ConfigDict(extra="ignore")
    namespace: str
    claim: str
    bytes: int = Field(ge=0)


class _Common(BaseModel):
    model_config = ConfigDict(extra="ignore")
    backup_id: str
    app_id: str
    cluster: str
    namespace: str
    namespaces: list[str] = Field(default_factory=list, description="Every namespace it holds")
    created: datetime
    completed: datetime


class BackupCatalog(_Common):
    """The sealed record: everything a restore uses."""

    format: Literal["vessel.backup/2"] = "vessel.backup/2"
    resources_digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    volumes: list[VolumeEntry]
    snapshot_id: str | None = Field(None, description="The app snapshot the backup copied")


class BackupListing(_Common):
    """`backup.json`: what anyone who can read the bucket sees of a backup."""

    format: Literal["vessel.backup/2"] = "vessel.backup/2"
    volumes: list[ListedVolume]


class LegacyCatalog(_Common):
    """`vessel.backup/1`, read only to restore a backup the request trusts unsealed."""

    format: Literal["vessel.backup/1"]
    resources_key: str
    volumes: list[VolumeEntry]
    snapshot_id: str | None = None


def _items(name: str, doc: Any) -> list[KubeObject]:
    items = doc.get("items") if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or doc.get("format") != RESOURCES_FORMAT:
        raise CatalogError(f"{name}: not a Vessel resource archive (format)")
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise CatalogError(f"{name}: not a Vessel resource archive (items)")
    return items


def _archive(objects: list[KubeObject]) -> dict[str, Any]:
    return {"format": RESOURCES_FORMAT, "items": objects}


def write_snapshot_resources(sb: SealedStore, snapshot_id: str, objects: list[KubeObject]) -> str:
    key = snapshot_resources_key(snapshot_id)
    sb.put(key, "snapshot-resources", snapshot_id, _archive(objects))
    return key


def read_snapshot_resources(sb: SealedStore, snapshot_id: str, key: str) -> list[KubeObject]:
    try:
        return _items(key, sb.get(key, "snapshot-resources", snapshot_id))
    except SealError as exc:
        raise CatalogError(str(exc)) from exc


def write_resources(sb: SealedStore, backup_id: str, objects: list[KubeObject]) -> str:
    """Seal a backup's resources; the digest its record names."""
    return sb.put(backup_key(backup_id, RESOURCES), "resources", backup_id, _archive(objects))


def read_written_resources(sb: SealedStore, backup_id: str) -> tuple[list[KubeObject], str]:
    """A backup's resources as this backup stored them, and their digest (for its record)."""
    key = backup_key(backup_id, RESOURCES)
    try:
        document, found = sb.get_with_digest(key, "resources", backup_id)
    except SealError as exc:
        raise CatalogError(str(exc)) from exc
    return _items(key, document), found


def write_catalog(sb: SealedStore, catalog: BackupCatalog) -> None:
    """The sealed record, then the listing entry that makes the backup complete."""
    sb.put(
        backup_key(catalog.backup_id, BACKUP_RECORD),
        "backup",
        catalog.backup_id,
        catalog.model_dump(mode="json"),
    )
    listing = BackupListing(
        **catalog.model_dump(exclude={"format", "volumes", "resources_digest", "snapshot_id"}),
        volumes=[ListedVolume.model_validate(v.model_dump()) for v in catalog.volumes],
    )
    sb.store.put_bytes(
        backup_key(catalog.backup_id, BACKUP_LISTING), listing.model_dump_json().encode()
    )


def _listing(store: ObjectStore, backup_id: str) -> dict[str, Any]:
    key = backup_key(backup_id, BACKUP_LISTING)
    try:
        doc = json.loads(store.get_bytes(key))
    except ValueError as exc:
        raise CatalogError(f"{key}: not JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise CatalogError(f"{key}: not a backup catalog")
    return doc


def read_catalog(sb: SealedStore, backup_id: str) -> BackupCatalog:
    """The sealed record, verified: authentic, bound to this backup, and agreeing with the
    listing entry the gateway authorized the request by. `UnsealedBackup` for a
    `vessel.backup/1` backup; `ObjectNotFound` when the backup is not (completely) there."""
    listing = _listing(sb.store, backup_id)
    key = backup_key(backup_id, BACKUP_LISTING)
    if listing.get("format") == LEGACY_FORMAT:
        raise UnsealedBackup(
            f"{key}: backup {backup_id} was written unsealed (vessel.backup/1) by an older "
            "Vessel: nothing proves its documents are the ones Vessel wrote"
        )
    if listing.get("format") != FORMAT:
        raise CatalogError(f"{key}: unknown format {listing.get('format')!r}")
    record_key = backup_key(backup_id, BACKUP_RECORD)
    try:
        catalog = BackupCatalog.model_validate(sb.get(record_key, "backup", backup_id))
        shown = BackupListing.model_validate(listing)
    except SealError as exc:
        raise CatalogError(str(exc)) from exc
    except ValidationError as exc:
        raise CatalogError(f"{key}: invalid backup catalog: {exc.errors()[0]['msg']}") from exc
    for name in ("backup_id", "app_id", "cluster", "namespace", "namespaces"):
        if getattr(shown, name) != getattr(catalog, name):
            raise CatalogError(
                f"{key}: {name} {getattr(shown, name)!r} disagrees with the sealed record "
                f"({getattr(catalog, name)!r}): the listing was modified"
            )
    return catalog


def read_resources(sb: SealedStore, catalog: BackupCatalog) -> list[KubeObject]:
    key = backup_key(catalog.backup_id, RESOURCES)
    try:
        doc = sb.get(key, "resources", catalog.backup_id, catalog.resources_digest)
    except SealError as exc:
        raise CatalogError(str(exc)) from exc
    return _items(key, doc)


def read_legacy(store: ObjectStore, backup_id: str) -> tuple[LegacyCatalog, list[KubeObject]]:
    """A `vessel.backup/1` backup as it is, unverified (only for a trusting request)."""
    key = backup_key(backup_id, BACKUP_LISTING)
    try:
        catalog = LegacyCatalog.model_validate(_listing(store, backup_id))
    except ValidationError as exc:
        raise CatalogError(f"{key}: invalid backup catalog: {exc.errors()[0]['msg']}") from exc
    try:
        archive = json.loads(store.get_bytes(catalog.resources_key))
    except ValueError as exc:
        raise CatalogError(f"{catalog.resources_key}: not JSON ({exc})") from exc
    return catalog, _items(catalog.resources_key, archive)


Backup = BackupCatalog | LegacyCatalog


def read_backup(
    sb: SealedStore, backup_id: str, trust_unsealed: bool = False
) -> tuple[Backup, list[KubeObject]]:
    """A backup's record and objects, verified; a `vessel.backup/1` backup only when
    `trust_unsealed` (else `UnsealedBackup`)."""
    try:
        catalog = read_catalog(sb, backup_id)
    except UnsealedBackup:
        if not trust_unsealed:
            raise
        return read_legacy(sb.store, backup_id)
    return catalog, read_resources(sb, catalog)
