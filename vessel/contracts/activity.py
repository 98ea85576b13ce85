"""The activity log: who asked for what, on what, and how it ended.

Kept in KV bucket `activity`, one record per key `<epoch ms, 13 digits>.<id>`, so sorting
the keys sorts by time. Protection writes a record when it accepts an operation and
updates it when the operation ends; the gateway writes the records of its own admin
actions that have no operation (tokens, backends, clusters). `cluster` and `namespaces`
say what the record is about in scope terms: a scoped caller sees only records wholly in
its scope, and records naming no cluster only unscoped callers see.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import Field

from vessel.contracts.models import Payload
from vessel.contracts.operations import Operation

BUCKET = "activity"


class ActivityRecord(Payload):
    id: str = Field(min_length=1, description="Unique per record (an operation id, or made up)")
    time: datetime
    identity: str = Field(description="The authenticated caller (token name) who asked")
    action: str = Field(description="backup, restore, token.create, backend.add, ...")
    target: str = Field(description="What it acted on: an app id, cluster/<id>, token/<name>...")
    operation_id: str = ""
    outcome: str = Field(
        description="New/InProgress while running; Completed, PartiallyFailed, Failed, "
        "Canceled once ended; Succeeded or Rejected for immediate actions"
    )
    message: str = ""
    cluster: str = Field("", description="The cluster it touched; empty: none (global)")
    namespaces: list[str] = Field(default_factory=list, description="Namespaces it touched")


def activity_key(time: datetime, record_id: str) -> str:
    """Sortable by time: zero-padded epoch milliseconds, then the id."""
    millis = int(time.astimezone(UTC).timestamp() * 1000)
    return f"{millis:013d}.{record_id}"


def operation_scope(op: Operation) -> tuple[str, list[str]]:
    """(cluster, namespaces) an operation touches, as far as its record tells."""
    if op.kind in ("restore", "restore-files") and op.target_cluster:
        return op.target_cluster, sorted(set(op.namespace_mapping.values()))
    parts = op.app_id.split(".", 2)
    if len(parts) == 3:
        return parts[0], [parts[1]]
    return op.source_cluster or op.target_cluster, []


def for_operation(op: Operation) -> ActivityRecord:
    """The activity record of an operation as it stands."""
    cluster, namespaces = operation_scope(op)
    target = op.app_id or (f"backup/{op.backup_id}" if op.backup_id else f"operation/{op.id}")
    return ActivityRecord(
        id=op.id,
        time=op.created,
        identity=op.requested_by,
        action=op.kind,
        target=target,
        operation_id=op.id,
        outcome=op.phase,
        message=op.message,
        cluster=cluster,
        namespaces=namespaces,
    )
