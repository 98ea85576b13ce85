"""Long-running operations as stored in the `operations` KV bucket (written by protection,
read by the gateway). Phase names are Velero's where it has one (New, InProgress,
Completed, PartiallyFailed, Failed); Canceling and Canceled are Vessel's own."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vessel.contracts.protection import ItemResult, RestoreOptions


class Phase(StrEnum):
    NEW = "New"
    IN_PROGRESS = "InProgress"
    CANCELING = "Canceling"
    """Cancel accepted; what the operation left behind is being cleaned up."""
    COMPLETED = "Completed"
    PARTIALLY_FAILED = "PartiallyFailed"
    FAILED = "Failed"
    CANCELED = "Canceled"


TERMINAL: frozenset[Phase] = frozenset(
    {Phase.COMPLETED, Phase.PARTIALLY_FAILED, Phase.FAILED, Phase.CANCELED}
)
_ENDS = TERMINAL | {Phase.CANCELING}
TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.NEW: frozenset({Phase.IN_PROGRESS}) | _ENDS,
    Phase.IN_PROGRESS: _ENDS,
    Phase.CANCELING: frozenset({Phase.CANCELED}),
    **{end: frozenset() for end in TERMINAL},
}
"""Where each phase may go next (staying is always allowed): a phase never goes back, and an
ended operation never changes phase."""


class PhaseTransitionError(ValueError):
    pass


def check_transition(op_id: str, old: Phase, new: Phase) -> None:
    """Raises PhaseTransitionError naming the operation when `old` may not become `new`."""
    if new != old and new not in TRANSITIONS[old]:
        raise PhaseTransitionError(f"operation {op_id} cannot go from {old} to {new}")


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
    files: int = 0
    error: str = ""
    parent_snapshot: str = Field(
        "", description="backup: the earlier repository snapshot it is incremental to"
    )


class Operation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    kind: Literal[
        "backup",
        "restore",
        "restore-files",
        "verify",
        "recover-platform",
        "snapshot",
        "delete-backup",
        "delete-snapshot",
        "clone",
        "migrate",
    ]
    phase: Phase = Phase.NEW
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
