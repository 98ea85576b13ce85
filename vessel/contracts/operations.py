"""Long-running operations as stored in the `operations` KV bucket (written by protection,
read by the gateway). Phases follow Velero's vocabulary."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vessel.contracts.protection import ItemResult, RestoreOptions

Phase = Literal["New", "InProgress", "Completed", "PartiallyFailed", "Failed", "Canceled"]
TERMINAL: frozenset[str] = frozenset({"Completed", "PartiallyFailed", "Failed", "Canceled"})


def now() -> datetime:
    return datetime.now(UTC)


class VolumeWork(BaseModel):
    model_config = ConfigDict(extra="forbid")
    claim: str
    namespace: str
    transfer_id: str
    state: Literal["Waiting", "Moving", "Done", "Failed"] = "Waiting"
    snapshot_id: str = ""
    bytes: int = 0
    error: str = ""
    parent_snapshot: str = Field(
        "", description="backup: the earlier repository snapshot it is incremental to"
    )


class Operation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    kind: Literal[
        "backup", "restore", "snapshot", "delete-backup", "delete-snapshot", "clone", "migrate"
    ]
    phase: Phase = "New"
    message: str = ""
    requested_by: str = "anonymous"
    app_id: str = ""
    backup_id: str = ""
    bucket: str = ""
    source_cluster: str = ""
    target_cluster: str = ""
    namespace_mapping: dict[str, str] = Field(default_factory=dict)
    snapshot_id: str = ""
    schedule: str = ""
    volumes: list[VolumeWork] = Field(default_factory=list)
    items: list[ItemResult] = Field(
        default_factory=list, description="Per-item outcomes: resources, hooks, snapshots"
    )
    request: dict[str, Any] = Field(
        default_factory=dict, description="The command of a composite operation (clone, migrate)"
    )
    restore_options: RestoreOptions | None = Field(
        None, description="restore: the options it runs with (its later steps plan again)"
    )
    created: datetime = Field(default_factory=now)
    updated: datetime = Field(default_factory=now)

    @property
    def done(self) -> bool:
        return self.phase in TERMINAL

    @property
    def settled(self) -> bool:
        """Still running, and every volume's transfer has ended."""
        return not self.done and all(w.state in ("Done", "Failed") for w in self.volumes)

    def volume_errors(self) -> str:
        return "; ".join(f"{w.claim}: {w.error}" for w in self.volumes if w.state == "Failed")
