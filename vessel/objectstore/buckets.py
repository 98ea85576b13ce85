"""Opens configured buckets by name (one client per bucket, reused)."""

from __future__ import annotations

from functools import cache

from vessel.config import VesselSettings
from vessel.objectstore.base import ObjectStore
from vessel.objectstore.lock import LockPolicy, locked
from vessel.objectstore.minio_port import MinioStore


class Buckets:
    def __init__(self, settings: VesselSettings) -> None:
        self.settings = settings
        self.open = cache(self._open)

    def _open(self, name: str) -> ObjectStore:
        config = self.settings.bucket(name)
        access, secret = config.credentials()
        store = MinioStore(config.endpoint, config.bucket, access, secret, secure=config.secure)
        lock = config.object_lock
        policy = LockPolicy(lock.mode, lock.retain_days) if lock is not None else None
        return locked(store, policy, config.repository)
