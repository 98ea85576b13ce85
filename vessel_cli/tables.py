"""The table view of each message kind: the columns a person scans for, computed where the
raw fields would not read well (sizes, ages, a schedule in words). JSON and YAML output
keep every field; the table is only for reading.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from vessel_cli.options import WEEKDAYS
from vessel_cli.units import human, size


@dataclass(frozen=True)
class Item:
    message: Any
    """The API message."""
    doc: dict[str, Any]
    """The message as JSON names it (proto field names)."""
    related: Any
    """What the list verb looked up beside it (a schedule's last run), else None."""
    now: float


class Column(NamedTuple):
    header: str
    cell: Callable[[Item], str]
    optional: bool = False
    """Shown only when some row has a value (a message, an error)."""


EMPTY: dict[str, str] = {"clusters": "all", "namespaces": "all", "expires": "never"}
"""What an empty cell of these columns means (tokens: unscoped, no expiry)."""
FINAL_PHASES = ("Completed", "PartiallyFailed", "Failed", "Canceled")


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(v.get("name", "") if isinstance(v, dict) else str(v) for v in value)
    return "" if value is None else str(value)


def field(path: str, header: str = "") -> Column:
    """The field at `path` (dotted for nested messages) as it is."""

    def cell(item: Item) -> str:
        value: Any = item.doc
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value in (None, [], ""):
            value = EMPTY.get(path.rsplit(".", 1)[-1])
        return _cell(value)

    return Column(header or path.rsplit(".", 1)[-1].upper(), cell)


def _seconds(timestamp: Any) -> float | None:
    if not timestamp.seconds and not timestamp.nanos:
        return None
    return float(timestamp.seconds) + float(timestamp.nanos) / 1e9


def since(attribute: str) -> Callable[[Item], str]:
    """How long ago the timestamp `attribute` was, like kubectl's AGE."""

    def cell(item: Item) -> str:
        at = _seconds(getattr(item.message, attribute))
        return "-" if at is None else human(item.now - at)

    return cell


# ---- operations ----


def _target(item: Item) -> str:
    """What an operation works on; for one that writes elsewhere, where to (`app -> cluster/ns`)."""
    op = item.message
    source = op.app_id or op.backup_id or op.snapshot_id
    if op.target_cluster and op.kind in ("restore", "clone", "migrate"):
        namespaces = ",".join(sorted(set(op.namespace_mapping.values())))
        where = op.target_cluster + (f"/{namespaces}" if namespaces else "")
        return f"{source} -> {where}" if source else where
    return source or op.target_cluster or op.bucket or "-"


def _progress(item: Item) -> str:
    op = item.message
    if op.volumes:
        done = sum(v.state == "Done" for v in op.volumes)
        moved = sum(v.bytes for v in op.volumes)
        text = f"{done}/{len(op.volumes)} volumes"
        return f"{text}, {size(moved)}" if moved else text
    if op.items:
        done = sum(i.state in ("Completed", "Skipped", "Failed") for i in op.items)
        what = "steps" if all(i.kind == "step" for i in op.items) else "items"
        return f"{done}/{len(op.items)} {what}"
    return "-"


def _duration(item: Item) -> str:
    op = item.message
    start = _seconds(op.created)
    if start is None:
        return "-"
    end = _seconds(op.updated) if op.phase in FINAL_PHASES else None
    return human((end if end is not None else item.now) - start)


OPERATION = [
    field("id"),
    field("kind"),
    Column("TARGET", _target),
    field("phase"),
    Column("PROGRESS", _progress),
    Column("AGE", since("created")),
    Column("DURATION", _duration),
    Column("MESSAGE", lambda i: i.message.message, optional=True),
]


# ---- backups ----


def _backup_phase(item: Item) -> str:
    # Protection writes a backup's catalog object last, so every listed backup completed;
    # one whose object cannot be read (an error) is shown as such, and one written before
    # sealing because it restores only with --trust-unsealed.
    if item.message.error:
        return "Unreadable"
    return "Completed (unsealed)" if item.message.format == "vessel.backup/1" else "Completed"


def _verified(item: Item) -> str:
    """`Passed 3h` (how long ago), `Failed 1d`; empty when never verified."""
    if not item.message.HasField("verification"):
        return ""
    verification = item.message.verification
    at = _seconds(verification.verified_at)
    return str(verification.outcome) + ("" if at is None else f" {human(item.now - at)}")


BACKUP = [
    field("id"),
    field("app_id", "APP"),
    field("cluster"),
    Column("SIZE", lambda i: size(i.message.bytes)),
    Column("AGE", since("created")),
    Column("PHASE", _backup_phase),
    Column("VERIFIED", _verified, optional=True),
    Column("ERROR", lambda i: i.message.error, optional=True),
]


# ---- schedules ----


def when(schedule: Any) -> str:
    """`hourly at :00`, `daily at 02:30`, `weekly on sun at 02:30`, `cron */10 * * * *`."""
    at = f"{schedule.hour:02d}:{schedule.minute:02d}"
    if schedule.frequency == "hourly":
        return f"hourly at :{schedule.minute:02d}"
    if schedule.frequency == "daily":
        return f"daily at {at}"
    if schedule.frequency == "weekly":
        return f"weekly on {WEEKDAYS[schedule.day_of_week % 7]} at {at}"
    if schedule.frequency == "monthly":
        return f"monthly on day {schedule.day_of_month or 1} at {at}"
    return f"cron {schedule.cron}"


def keeps(schedule: Any) -> str:
    """`keep 7 daily, 4 weekly; floor 3`."""
    r = schedule.retention
    tiers = [
        f"{n} {tier}"
        for tier, n in (
            ("hourly", r.hourly),
            ("daily", r.daily),
            ("weekly", r.weekly),
            ("monthly", r.monthly),
            ("yearly", r.yearly),
        )
        if n
    ]
    floor = r.floor if r.HasField("floor") else 1  # protection's default
    floors = f"floor {floor}" + (f", {r.floor_verified} verified" if r.floor_verified else "")
    return "; ".join([*(["keep " + ", ".join(tiers)] if tiers else []), floors])


def next_run(schedule: Any, now: float) -> float | None:
    """When the schedule runs next (epoch seconds), by the rules protection runs it by."""
    # Loaded here: only a schedule table needs the contracts (pydantic) and croniter.
    from datetime import UTC, datetime

    from croniter import croniter

    from vessel.contracts.protection import ScheduleSpec
    from vessel.contracts.schedule_rules import cron_expression

    try:
        spec = ScheduleSpec(
            id=schedule.id,
            app_id=schedule.app_id,
            kind=schedule.kind,
            bucket=schedule.bucket,
            frequency=schedule.frequency,
            cron=schedule.cron,
            minute=schedule.minute,
            hour=schedule.hour,
            day_of_week=schedule.day_of_week,
            day_of_month=schedule.day_of_month or 1,
        )
        start = datetime.fromtimestamp(now, UTC)
        return float(croniter(cron_expression(spec), start).get_next(datetime).timestamp())
    except ValueError:  # a schedule this CLI cannot read (newer fields): say nothing
        return None


def _next(item: Item) -> str:
    if item.message.paused:
        return "paused"
    at = next_run(item.message, item.now)
    return "-" if at is None else f"in {human(at - item.now)}"


def _last(item: Item) -> str:
    op = item.related
    if op is None:
        return "-"
    at = _seconds(op.created)
    return op.phase if at is None else f"{op.phase} {human(item.now - at)} ago"


SCHEDULE = [
    field("id", "NAME"),
    field("app_id", "APP"),
    field("kind"),
    field("bucket"),
    Column("SCHEDULE", lambda i: f"{when(i.message)}; {keeps(i.message)}"),
    Column("NEXT RUN", _next),
    Column("LAST RUN", _last),
]


def _file_path(item: Item) -> str:
    target = item.message.target
    return str(item.message.path) + (f" -> {target}" if target else "")


def fields(paths: str) -> list[Column]:
    return [field(path) for path in paths.split()]


TABLES: dict[str, list[Column]] = {
    "App": fields("id state grouping workloads claims"),
    "Operation": OPERATION,
    "Backup": BACKUP,
    "Schedule": SCHEDULE,
    "Snapshot": fields("id app_id phase bucket schedule created volumes"),
    "Bucket": fields("name endpoint bucket repository secure"),
    "Hook": fields(
        "app_id id stage container_name container_image command builtin timeout_seconds on_failure"
    ),
    "Token": fields("name role clusters namespaces expires created_by"),
    "CreateTokenResponse": fields("token.name token.role token.expires secret"),
    "Backend": fields("cluster name type capacity_bytes free_bytes volumes pools"),
    "BackendChange": fields("operation_id cluster name action pools"),
    "StorageClass": fields("cluster name provisioner reclaim_policy is_default"),
    "Volume": fields("cluster id namespace claim backend pool size_bytes used_bytes state"),
    "VolumeSnapshot": fields("cluster id namespace name claim state created"),
    "Cluster": fields("id state source agent_version server reason"),
    "ClusterChange": fields("operation_id cluster action"),
    "JoinToken": fields("cluster expires_at token"),
    "Activity": fields("time identity action target outcome message"),
    "FileEntry": [
        Column("TYPE", lambda i: i.message.type),
        Column("MODE", lambda i: f"{i.message.mode:04o}"),
        Column("SIZE", lambda i: size(i.message.size)),
        Column("MODIFIED", lambda i: i.message.mtime.ToDatetime().strftime("%Y-%m-%d %H:%M")),
        Column("PATH", _file_path),
    ],
}


def table(messages: list[Any], docs: list[dict[str, Any]], related: dict[str, Any]) -> str:
    now = time.time()
    columns = TABLES.get(messages[0].DESCRIPTOR.name) or [field(c) for c in docs[0]]
    items = [
        Item(m, d, related.get(getattr(m, "id", "")), now)
        for m, d in zip(messages, docs, strict=True)
    ]
    grid = [[c.cell(i) for i in items] for c in columns]
    shown = [
        (c, cells) for c, cells in zip(columns, grid, strict=True) if not c.optional or any(cells)
    ]
    rows = [[c.header for c, _ in shown]] + [
        [cells[n] for _, cells in shown] for n in range(len(items))
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(shown))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
