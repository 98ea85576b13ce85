"""Reading the backup catalog a bucket holds (`backups/<id>/backup.json`).

The gateway lists backups from the bucket alone, so a fresh Vessel sees every backup any
Vessel wrote there. It reads the listing entries (`vessel.backup/2`, and `vessel.backup/1`
of backups written before sealing; docs/formats.md) leniently: one unreadable entry
becomes one item with an error, never a failed list. Listing entries are not sealed (the
gateway holds no repository key); protection checks them against the sealed record
before it restores anything, so a modified entry cannot widen what a scope reaches.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vessel.contracts import state
from vessel.objectstore.base import ObjectNotFound, ObjectStore

FORMATS = ("vessel.backup/2", "vessel.backup/1")


class CatalogVolume(BaseModel):
    model_config = ConfigDict(extra="ignore")
    namespace: str
    claim: str
    snapshot_id: str = ""
    bytes: int = Field(0, ge=0)


class CatalogView(BaseModel):
    """What the gateway needs of a catalog; fields it does not know are ignored, so newer
    writers stay readable."""

    model_config = ConfigDict(extra="ignore")
    format: str = FORMATS[0]
    backup_id: str = ""
    app_id: str = ""
    cluster: str = Field(min_length=1)
    namespace: str = Field(min_length=1)
    namespaces: list[str] = Field(default_factory=list)
    created: datetime | None = None
    completed: datetime | None = None
    volumes: list[CatalogVolume] = Field(default_factory=list)


@dataclass(frozen=True)
class CatalogEntry:
    backup_id: str
    view: CatalogView | None = None
    error: str = ""
    namespaces: list[str] = field(default_factory=list)

    @property
    def cluster(self) -> str:
        return self.view.cluster if self.view else ""


def backup_ids(store: ObjectStore) -> list[str]:
    """Ids of every backup whose catalog object exists (an unfinished backup has none)."""
    listed = (state.listed_backup_id(key) for key in store.list(state.BACKUPS_PREFIX))
    return sorted(backup_id for backup_id in listed if backup_id is not None)


def read_entry(store: ObjectStore, backup_id: str) -> CatalogEntry | None:
    """The backup's catalog; None when there is no catalog object."""
    key = state.backup_key(backup_id, state.BACKUP_LISTING)
    try:
        raw = store.get_bytes(key)
    except ObjectNotFound:
        return None
    try:
        view = CatalogView.model_validate(json.loads(raw))
    except ValueError as exc:  # JSONDecodeError and ValidationError are ValueErrors
        return CatalogEntry(backup_id, error=f"{key}: {_problem(exc)}")
    if view.format not in FORMATS:
        return CatalogEntry(backup_id, error=f"{key}: unknown format {view.format!r}")
    if view.backup_id and view.backup_id != backup_id:
        return CatalogEntry(
            backup_id, error=f"{key}: names backup {view.backup_id!r}, not {backup_id!r}"
        )
    namespaces = list(dict.fromkeys([view.namespace, *view.namespaces]))
    return CatalogEntry(backup_id, view, namespaces=namespaces)


def _problem(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "catalog"
        return f"invalid catalog: {where}: {first['msg']}"
    return f"not JSON: {exc}"
