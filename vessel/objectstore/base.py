"""The `ObjectStore` protocol: what Vessel needs from an S3 bucket.

Contract:
- Keys are `/`-separated, relative, without `..` segments; every method validates them.
- `put_*` is idempotent: writing the same key again replaces the object whole (S3 puts are
  atomic per object, so a reader sees the old or the new object, never a mix).
- `get_*` raises `ObjectNotFound` for a missing key; `get_range` returns at most `length`
  bytes from `offset` (fewer only at the end of the object); `list` returns keys in
  lexical order.
- `delete` of a missing key succeeds.
- Errors: `ObjectNotFound` (permanent for that key), `AccessDenied` (permanent: fix the
  credentials or policy), `StoreUnavailable` (temporary: retry later). Each names the
  bucket and key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class ObjectStoreError(Exception):
    pass


class ObjectNotFound(ObjectStoreError):
    pass


class AccessDenied(ObjectStoreError):
    pass


class StoreUnavailable(ObjectStoreError):
    pass


def check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid object key {key!r}")
    return key


class ObjectStore(Protocol):
    bucket: str

    def ensure_bucket(self) -> None: ...
    def put_bytes(self, key: str, data: bytes) -> None: ...
    def put_file(self, key: str, path: Path) -> None: ...
    def get_bytes(self, key: str) -> bytes: ...
    def get_file(self, key: str, path: Path) -> None: ...
    def get_range(self, key: str, offset: int, length: int) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def list(self, prefix: str) -> list[str]: ...
    def delete(self, key: str) -> None: ...
