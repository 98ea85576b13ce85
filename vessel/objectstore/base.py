"""The `ObjectStore` protocol: what Vessel needs from an S3 bucket.

Contract:
- Keys are `/`-separated, relative, without `..` segments; every method validates them.
- `put_*` is idempotent: writing the same key again replaces the object whole (S3 puts are
  atomic per object, so a reader sees the old or the new object, never a mix). In a
  versioned bucket the replaced object stays as an older version.
- `get_*` raises `ObjectNotFound` for a missing key; `get_range` returns at most `length`
  bytes from `offset` (fewer only at the end of the object); `list` returns keys in
  lexical order (current objects only, never versions hidden by a delete marker).
- `delete` of a missing key succeeds. In a versioned bucket it only hides the object
  behind a delete marker; `delete_version` is what frees space.
- Errors: `ObjectNotFound` (permanent for that key), `AccessDenied` (permanent: fix the
  credentials or policy), `StoreUnavailable` (temporary: retry later). Each names the
  bucket and key.

Object lock (S3 Object Lock, or nothing):
- `locking()` says whether the bucket enforces object lock. A store that cannot lock
  (a local directory) always answers False. `ensure_bucket(object_lock=True)` creates a
  lock-enabled bucket, and raises `LockUnsupported` when the store cannot lock or the
  bucket exists without object lock (S3 enables it only at creation).
- `put_*(..., retain=Retain(mode, until))` writes an object no one may delete or replace
  before `until` (a replacement becomes a newer version; the locked one stays).
  `LockUnsupported` when the bucket does not lock.
- `retention(key, version_id=None)` is the object's (or that version's) retention, None
  when unlocked; `ObjectNotFound` when there is no such object or version.
- `extend_retention(key, retain)` makes the current version stay locked at least until
  `retain.until`; a later retention is kept (never shortened).
- `versions(prefix)` lists every version and delete marker of the keys under `prefix`,
  keys in lexical order, each key's versions oldest first. A store without versions
  lists each object once, with version id "null" (as S3 does for unversioned objects).
- `delete_version(key, version_id)` deletes one version or delete marker for good; a
  version under retention raises `ObjectLocked` (naming the key and the date) and stays.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol

LockMode = Literal["governance", "compliance"]
NULL_VERSION = "null"


class ObjectStoreError(Exception):
    pass


class ObjectNotFound(ObjectStoreError):
    pass


class AccessDenied(ObjectStoreError):
    pass


class StoreUnavailable(ObjectStoreError):
    pass


class LockUnsupported(ObjectStoreError):
    """The store or bucket cannot lock objects, but locking was asked for."""


class ObjectLocked(ObjectStoreError):
    """A version under retention may not be deleted before `until`."""

    def __init__(self, where: str, key: str, until: datetime) -> None:
        super().__init__(
            f"{where}: locked (object lock) until {until.isoformat()}; "
            "it can be deleted after that date"
        )
        self.key = key
        self.until = until


@dataclass(frozen=True)
class Retain:
    """Keep an object from deletion and replacement until `until` (timezone-aware)."""

    mode: LockMode
    until: datetime


@dataclass(frozen=True)
class ObjectVersion:
    key: str
    version_id: str
    modified: datetime
    delete_marker: bool = False


Versions = list[ObjectVersion]


def check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid object key {key!r}")
    return key


class ObjectStore(Protocol):
    bucket: str

    def ensure_bucket(self, object_lock: bool = False) -> None: ...
    def put_bytes(self, key: str, data: bytes, retain: Retain | None = None) -> None: ...
    def put_file(self, key: str, path: Path, retain: Retain | None = None) -> None: ...
    def get_bytes(self, key: str) -> bytes: ...
    def get_file(self, key: str, path: Path) -> None: ...
    def get_range(self, key: str, offset: int, length: int) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def list(self, prefix: str) -> list[str]: ...
    def delete(self, key: str) -> None: ...
    def locking(self) -> bool: ...
    def retention(self, key: str, version_id: str | None = None) -> Retain | None: ...
    def extend_retention(self, key: str, retain: Retain) -> None: ...
    def versions(self, prefix: str) -> Versions: ...
    def delete_version(self, key: str, version_id: str) -> None: ...
