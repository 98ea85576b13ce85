"""The provisioner's state in KV: a record per volume (bucket `volumes`) and per snapshot
(bucket `snapshots`), keyed `<cluster>.<id>`, and the backends added at run time (bucket
`backends`, keyed `<cluster>.<backend>`); the buckets are catalogued in
`vessel.contracts.state`.

The provisioner of a cluster is the only writer of its cluster's keys. Records are cached in
memory after `load`; every write goes through a `RecordStore`, so the cache stays exact,
and updates are compare-and-set on the KV revision, so a second replica loses a race
instead of overwriting. Writing the volume record *before* the backend volume exists
makes placement sticky (a retry uses the backend chosen first) and leaves every backend
volume findable, so an interrupted provisioning is finished or reclaimed, never orphaned.
"""

from __future__ import annotations

import json
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from vessel.bus.errors import KeyExistsError
from vessel.bus.nats_port import KeyValue
from vessel.config import BackendConfig

VolumeState = Literal["Creating", "Provisioned", "Bound", "Retained", "Deleting"]
VolumeOrigin = Literal["new", "clone", "import"]


class Record(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    @property
    def id(self) -> str:
        raise NotImplementedError


class VolumeRecord(Record):
    cluster: str
    volume_id: str
    backend: str
    backend_type: str
    pool: str = "default"
    path: str = ""
    size_bytes: int
    requested_bytes: int = 0
    """The claim's request last honoured: a smaller one later is a shrink, refused."""
    namespace: str
    claim: str
    claim_uid: str = ""
    storage_class: str = ""
    reclaim_policy: str = "Delete"
    state: VolumeState
    origin: VolumeOrigin = "new"
    source: str = ""
    """clone: `PersistentVolumeClaim/<name>` or `VolumeSnapshot/<name>`; import: the path."""
    source_volume: str = ""
    source_snapshot: str = ""
    revert_request: str = ""
    """The last in-place revert done: `<snapshot uid>|<previous vessel.io/reverted-to>`."""
    reverted_to: str = ""
    """Its outcome, the claim's `vessel.io/reverted-to`: `<snapshot>@<time>`."""

    @property
    def id(self) -> str:
        return self.volume_id

    @property
    def requested(self) -> int:
        return self.requested_bytes or self.size_bytes


SnapshotState = Literal["Creating", "Ready", "Deleting"]


class SnapshotRecord(Record):
    cluster: str
    snapshot_id: str
    volume_id: str
    backend: str
    namespace: str
    name: str
    uid: str
    content: str
    deletion_policy: str = "Delete"
    size_bytes: int = 0
    created_at: float = 0.0
    state: SnapshotState

    @property
    def id(self) -> str:
        return self.snapshot_id


R = TypeVar("R", bound=Record)


class RecordStore(Generic[R]):
    def __init__(self, kv: KeyValue, cluster: str, model: type[R]) -> None:
        self.kv = kv
        self.cluster = cluster
        self.model = model
        self._cache: dict[str, R] = {}
        self._revision: dict[str, int] = {}

    def _key(self, record_id: str) -> str:
        return f"{self.cluster}.{record_id}"

    async def load(self) -> None:
        prefix = f"{self.cluster}."
        for key in await self.kv.keys():
            if key.startswith(prefix):
                await self._refresh(key[len(prefix) :])

    async def _refresh(self, record_id: str) -> R | None:
        entry = await self.kv.get(self._key(record_id))
        if entry is None or not entry.value:
            self._cache.pop(record_id, None)
            self._revision.pop(record_id, None)
            return None
        record = self.model.model_validate_json(entry.value)
        self._cache[record_id] = record
        self._revision[record_id] = entry.revision
        return record

    def get(self, record_id: str) -> R | None:
        return self._cache.get(record_id)

    async def read_all(self) -> list[R]:
        """This cluster's records as the bucket holds them now, read afresh (not cached)."""
        prefix, found = f"{self.cluster}.", []
        for key in await self.kv.keys():
            entry = await self.kv.get(key) if key.startswith(prefix) else None
            if entry is not None:
                found.append(self.model.model_validate_json(entry.value))
        return found

    def all(self) -> list[R]:
        return list(self._cache.values())

    async def create(self, record: R) -> R:
        """Store a new record; when one exists already, return that one instead."""
        try:
            revision = await self.kv.create(self._key(record.id), record.model_dump_json().encode())
        except KeyExistsError:
            existing = await self._refresh(record.id)
            if existing is None:  # deleted in between: try once more
                return await self.create(record)
            return existing
        self._cache[record.id] = record
        self._revision[record.id] = revision
        return record

    async def save(self, record: R) -> R:
        """Replace the record; `KeyExistsError` if someone else changed it since we read it."""
        revision = self._revision.get(record.id)
        if revision is None:
            return await self.create(record)
        try:
            new = await self.kv.update(
                self._key(record.id), record.model_dump_json().encode(), revision
            )
        except KeyExistsError:
            await self._refresh(record.id)
            raise
        self._cache[record.id] = record
        self._revision[record.id] = new
        return record

    async def remove(self, record_id: str) -> None:
        await self.kv.delete(self._key(record_id))
        self._cache.pop(record_id, None)
        self._revision.pop(record_id, None)


BackendAction = Literal["add", "update", "remove"]


class BackendRecord(BaseModel):
    """A backend command applied: the backend's configuration, or None once removed (the
    removal hides a configured backend). The operation id makes a redelivery a no-op."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    operation_id: str
    action: BackendAction
    config: BackendConfig | None


class BackendStore:
    """The `backends` bucket's entries of one cluster, keyed `<cluster>.<backend>`.

    Values are written as `json.dumps` wrote them before they had a model (same keys,
    order and spacing), so old and new entries read alike."""

    def __init__(self, kv: KeyValue, cluster: str) -> None:
        self.kv = kv
        self.cluster = cluster

    def _key(self, name: str) -> str:
        return f"{self.cluster}.{name}"

    async def get(self, name: str) -> BackendRecord | None:
        entry = await self.kv.get(self._key(name))
        return None if entry is None else BackendRecord.model_validate_json(entry.value)

    async def names(self) -> list[str]:
        """The backends this cluster has an entry for, in the bucket's key order."""
        prefix = f"{self.cluster}."
        return [key[len(prefix) :] for key in await self.kv.keys() if key.startswith(prefix)]

    async def put(self, name: str, record: BackendRecord) -> None:
        await self.kv.put(self._key(name), json.dumps(record.model_dump(mode="json")).encode())
