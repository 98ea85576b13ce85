"""GFS retention of a schedule's runs, as a pure function so every rule can be tested on
tables of runs without a bus.

Rules (all times in UTC):
- Each tier keeps the newest successful run of each of its newest N periods that hold a
  successful run (hour, day, ISO week, month, year), as restic's `--keep-*` does: a week
  without runs does not use up a weekly slot.
- The floor keeps the newest `floor` successful runs whatever the tiers say, so a policy
  can never leave fewer than `floor` good copies.
- A run still in progress is never deleted; a failed run is deleted only once a newer run
  succeeded (until then it is the latest news about the schedule).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from vessel.contracts.protection import Retention


@dataclass(frozen=True)
class Run:
    id: str
    time: datetime
    successful: bool
    finished: bool = True
    verified: bool = False
    """A backup whose last restore verification passed."""


@dataclass
class Decision:
    keep: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    reasons: dict[str, list[str]] = field(default_factory=dict)
    """Why each kept run is kept: tier names, "floor", "in progress", "newer than any success"."""


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


Period = Callable[[datetime], Hashable]
TIERS: tuple[tuple[str, Period], ...] = (
    ("hourly", lambda t: (t.year, t.month, t.day, t.hour)),
    ("daily", lambda t: t.date()),
    ("weekly", lambda t: t.isocalendar()[:2]),
    ("monthly", lambda t: (t.year, t.month)),
    ("yearly", lambda t: t.year),
)


def decide(runs: list[Run], policy: Retention) -> Decision:
    """Which runs to keep and which to delete; every run lands in exactly one list, newest
    first in each."""
    ordered = sorted(runs, key=lambda r: (_utc(r.time), r.id), reverse=True)
    good = [r for r in ordered if r.finished and r.successful]
    reasons: dict[str, list[str]] = {}

    def mark(run: Run, reason: str) -> None:
        reasons.setdefault(run.id, []).append(reason)

    for name, period in TIERS:
        count = getattr(policy, name)
        seen: set[Hashable] = set()
        for run in good:
            key = period(_utc(run.time))
            if key in seen:
                continue
            if len(seen) == count:
                break
            seen.add(key)
            mark(run, name)
    for run in good[: policy.floor]:
        mark(run, "floor")
    for run in [r for r in good if r.verified][: policy.floor_verified]:
        mark(run, "verified floor")
    newest_good = _utc(good[0].time) if good else None
    for run in ordered:
        if not run.finished:
            mark(run, "in progress")
        elif not run.successful and (newest_good is None or _utc(run.time) > newest_good):
            mark(run, "newer than any success")
    decision = Decision(reasons=reasons)
    for run in ordered:
        (decision.keep if run.id in reasons else decision.delete).append(run.id)
    return decision
