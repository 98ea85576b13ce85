"""The `StorageBackend` protocol: what the provisioner needs from a place that holds volumes.

Contract:
- Calls are blocking (run them in a thread) and safe to repeat: `create_volume` of an
  existing volume with the same size returns it; `delete_volume` of a missing one succeeds.
- A volume appears under its final name only when fully created (size limit applied),
  so a crash mid-create never leaves something that looks finished; leftovers of an
  interrupted create are removed by the next attempt.
- Errors: `InsufficientCapacity` and `InvalidVolume` are permanent for the request;
  `BackendUnavailable` is temporary. Messages name the backend and volume.
- Capabilities: `enforces_size` (writes past the size fail), `snapshots`, `clones`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

VOLUME_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,127}$")


class BackendError(Exception):
    pass


class InsufficientCapacity(BackendError):
    pass


class InvalidVolume(BackendError):
    pass


class BackendUnavailable(BackendError):
    pass


@dataclass(frozen=True)
class VolumeInfo:
    volume_id: str
    path: Path
    size_bytes: int


class StorageBackend(Protocol):
    name: str
    type: str
    capabilities: frozenset[str]

    def create_volume(self, volume_id: str, size_bytes: int) -> VolumeInfo: ...
    def delete_volume(self, volume_id: str) -> None: ...
    def get_volume(self, volume_id: str) -> VolumeInfo | None: ...
    def free_bytes(self) -> int: ...


def check_volume_id(backend: str, volume_id: str) -> str:
    if not VOLUME_ID.match(volume_id):
        raise InvalidVolume(f"backend {backend}: invalid volume id {volume_id!r}")
    return volume_id
