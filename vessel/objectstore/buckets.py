"""Opens configured buckets by name (one client per bucket, reused)."""

from __future__ import annotations

from functools import cache

from vessel.config import VesselSettings
from vessel.objectstore.minio_port import MinioStore


class Buckets:
    def __init__(self, settings: VesselSettings) -> None:
        self.settings = settings
        self.open = cache(self._open)

    def _open(self, name: str) -> MinioStore:
        config = self.settings.bucket(name)
        access, secret = config.credentials()
        return MinioStore(config.endpoint, config.bucket, access, secret, secure=config.secure)
