"""A bucket's object-lock setting applied to every write, and deleting for good.

`LockedStore` wraps the store of a bucket whose setting asks for object lock: every
object written without an explicit retention is locked for `retain_days` plus `MARGIN`,
except keys under the prefixes it is told never to lock (the repository's `locks/`, which
are rewritten every minute and deleted when released). Callers that need one date for
several objects (a pack and its index object, a snapshot) pass it explicitly.

`purge` deletes every version of a key, which is what frees space in a lock-enabled
(always versioned) bucket; a plain `delete` there only adds a delete marker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from vessel.objectstore.base import (
    LockMode,
    ObjectStore,
    Retain,
    Versions,
)

NO_LOCK = Retain("governance", datetime.min.replace(tzinfo=UTC))
"""Passed as a retention: write this object unlocked even through a `LockedStore`."""
MARGIN = timedelta(days=1)
"""Added to every retention: a backup fixes its date when it starts, so a snapshot written
up to a day later still stays locked for `retain_days` after it was written; it also
absorbs clock differences between Vessel and the S3 service."""


@dataclass(frozen=True)
class LockPolicy:
    mode: LockMode
    retain_days: int

    def retain(self, now: datetime | None = None) -> Retain:
        start = now or datetime.now(UTC)
        return Retain(self.mode, start + timedelta(days=self.retain_days) + MARGIN)

    @property
    def ahead(self) -> timedelta:
        """How far past what is needed a retention is extended, so a pack that every
        backup reuses is extended about four times per retention period, not every time."""
        return max(timedelta(days=1), timedelta(days=self.retain_days) / 4)


class LockedStore:
    """An `ObjectStore` that locks what it writes, following the bucket's setting."""

    def __init__(self, inner: ObjectStore, policy: LockPolicy, never: tuple[str, ...]) -> None:
        self.inner = inner
        self.policy = policy
        self.never = never
        self.bucket = inner.bucket

    def _retain(self, key: str, retain: Retain | None) -> Retain | None:
        if retain is NO_LOCK:
            return None
        if retain is not None or key.startswith(self.never):
            return retain
        return self.policy.retain()

    def ensure_bucket(self, object_lock: bool = True) -> None:
        self.inner.ensure_bucket(object_lock=True)

    def put_bytes(self, key: str, data: bytes, retain: Retain | None = None) -> None:
        self.inner.put_bytes(key, data, self._retain(key, retain))

    def put_file(self, key: str, path: Path, retain: Retain | None = None) -> None:
        self.inner.put_file(key, path, self._retain(key, retain))

    def get_bytes(self, key: str) -> bytes:
        return self.inner.get_bytes(key)

    def get_file(self, key: str, path: Path) -> None:
        self.inner.get_file(key, path)

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        return self.inner.get_range(key, offset, length)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def list(self, prefix: str) -> list[str]:
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def locking(self) -> bool:
        return self.inner.locking()

    def retention(self, key: str, version_id: str | None = None) -> Retain | None:
        return self.inner.retention(key, version_id)

    def extend_retention(self, key: str, retain: Retain) -> None:
        self.inner.extend_retention(key, retain)

    def versions(self, prefix: str) -> Versions:
        return self.inner.versions(prefix)

    def delete_version(self, key: str, version_id: str) -> None:
        self.inner.delete_version(key, version_id)


def lock_policy(store: ObjectStore) -> LockPolicy | None:
    return store.policy if isinstance(store, LockedStore) else None


REWRITTEN = ("catalog/",)
"""Objects Vessel rewrites outside the repository (protection's catalog head): never locked."""


def locked(store: ObjectStore, policy: LockPolicy | None, repository: str) -> ObjectStore:
    """`store`, locking writes when `policy` is set (never what is rewritten: the
    repository's `locks/` and `REWRITTEN`)."""
    if policy is None:
        return store
    return LockedStore(store, policy, never=(f"{repository.strip('/')}/locks/", *REWRITTEN))


def purge(store: ObjectStore, key: str) -> None:
    """Delete `key` for good: every version and delete marker, newest first. Raises
    `ObjectLocked` at the first version still under retention; that version and older ones
    stay (so nothing Vessel wrote is ever half-deleted: it wrote one version)."""
    if not store.locking():
        store.delete(key)
        return
    for version in reversed([v for v in store.versions(key) if v.key == key]):
        store.delete_version(key, version.version_id)


def locked_until(store: ObjectStore, key: str) -> datetime | None:
    """The date until which `key` may not be deleted, None when it may be now."""
    if not store.locking():
        return None
    retain = store.retention(key)
    if retain is None or retain.until <= datetime.now(UTC):
        return None
    return retain.until
