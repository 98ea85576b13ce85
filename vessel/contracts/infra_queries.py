"""Request/reply payloads of the provisioner's per-cluster queries (core NATS, not stored).

The gateway never talks to backends or Kubernetes: it asks the provisioner of a cluster,
which answers from what it serves right now (its backends and pools with their free
space, the StorageClasses its informer holds, the space its volumes use). Subjects:
`vessel.query.provisioner.<cluster>.backends|storageclasses|volumes`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from vessel.contracts.models import Payload


class BackendQuery(Payload):
    """Request on `.backends`: every backend of the cluster (or the one named)."""

    name: str = Field("", description="Only this backend; empty: all")


class PoolInfo(Payload):
    name: str
    attributes: dict[str, str] = Field(default_factory=dict, description="As classes match them")
    labels: dict[str, str] = Field(default_factory=dict)
    capacity_bytes: int = Field(
        0, ge=0, description="The pool's total (its cap, else the backend's)"
    )
    free_bytes: int = Field(0, ge=0, description="What placement may still allocate here")
    allocated_bytes: int = Field(0, ge=0, description="Sizes of the volumes recorded in the pool")


class BackendInfo(Payload):
    name: str
    type: str
    path: str = ""
    capacity_bytes: int = Field(0, ge=0, description="Configured capacity, else filesystem size")
    free_bytes: int = Field(0, ge=0, description="Free space less what is reserved for placements")
    volumes: int = Field(0, ge=0, description="Volumes recorded on the backend")
    pools: list[PoolInfo] = Field(default_factory=list)


class BackendList(Payload):
    cluster: str
    backends: list[BackendInfo] = Field(default_factory=list)


class StorageClassQuery(Payload):
    """Request on `.storageclasses`: the cluster's StorageClasses (every provisioner's)."""


class StorageClassInfo(Payload):
    name: str
    provisioner: str
    parameters: dict[str, str] = Field(default_factory=dict)
    reclaim_policy: str = "Delete"
    volume_binding_mode: str = "Immediate"
    allow_volume_expansion: bool = False
    is_default: bool = Field(False, description="Annotated as the cluster's default class")
    vessel: bool = Field(False, description="Served by Vessel's provisioner")


class StorageClassList(Payload):
    cluster: str
    storage_classes: list[StorageClassInfo] = Field(default_factory=list)


class VolumeUsageQuery(Payload):
    """Request on `.volumes`: bytes used by these volumes of the cluster."""

    volume_ids: list[str] = Field(default_factory=list, max_length=1000)


class VolumeUsage(Payload):
    cluster: str
    used_bytes: dict[str, int] = Field(
        default_factory=dict, description="Volume id → bytes used; absent: not on a backend"
    )


class _Stored(BaseModel):
    """The provisioner owns these records; readers take the fields they need and ignore
    the rest, so the provisioner may add fields freely."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class StoredVolume(_Stored):
    """A value of KV `volumes` (key `<cluster>.<volume_id>`), as readers see it."""

    cluster: str
    volume_id: str
    backend: str
    pool: str = "default"
    size_bytes: int = 0
    namespace: str
    claim: str
    storage_class: str = ""
    reclaim_policy: str = "Delete"
    state: str
    origin: str = "new"
    source: str = ""
    path: str = Field("", description="Where the volume is on its node")


class StoredSnapshot(_Stored):
    """A value of KV `snapshots` (key `<cluster>.<snapshot_id>`), as readers see it."""

    cluster: str
    snapshot_id: str
    volume_id: str
    backend: str
    namespace: str
    name: str
    deletion_policy: str = "Delete"
    size_bytes: int = 0
    created_at: float = 0.0
    state: str
