"""GFS retention with a floor, on tables of runs: which runs a policy keeps and deletes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.protection.retention import Run, decide
from vessel.contracts.protection import Retention

T0 = datetime(2026, 3, 2, 0, 30, tzinfo=UTC)  # a Monday


def ok(run_id: str, at: datetime) -> Run:
    return Run(run_id, at, successful=True)


def failed(run_id: str, at: datetime) -> Run:
    return Run(run_id, at, successful=False)


def running(run_id: str, at: datetime) -> Run:
    return Run(run_id, at, successful=False, finished=False)


def hourly_runs(count: int, start: datetime = T0) -> list[Run]:
    return [ok(f"h{i:03d}", start + timedelta(hours=i)) for i in range(count)]


@dataclass
class Case:
    name: str
    runs: list[Run]
    policy: Retention
    keep: set[str]


CASES = [
    Case(
        "all-zero tiers with floor 3 keep exactly the newest 3",
        hourly_runs(10),
        Retention(floor=3),
        {"h009", "h008", "h007"},
    ),
    Case(
        "floor 0 and no tiers keep nothing finished",
        hourly_runs(4),
        Retention(floor=0),
        set(),
    ),
    Case(
        "weekly-only policy, every run in one week, floor 3 keeps 3",
        [ok(f"d{i}", T0 + timedelta(days=i)) for i in range(6)],  # Monday to Saturday
        Retention(weekly=4, floor=3),
        {"d5", "d4", "d3"},
    ),
    Case(
        "weekly-only policy without a floor keeps one run per week",
        [ok(f"d{i}", T0 + timedelta(days=i)) for i in range(6)],
        Retention(weekly=4, floor=0),
        {"d5"},
    ),
    Case(
        "daily 3 keeps the newest run of each of the 3 newest days",
        [ok(f"r{i:02d}", T0 + timedelta(hours=6 * i)) for i in range(20)],  # 5 days, 4 a day
        Retention(daily=3, floor=0),
        {"r19", "r15", "r11"},
    ),
    Case(
        "hourly 2 + daily 2: tiers add up, one run can serve both",
        [ok(f"r{i:02d}", T0.replace(minute=0) + timedelta(minutes=30 * i)) for i in range(96)],
        Retention(hourly=2, daily=2, floor=0),
        {"r95", "r93", "r47"},
    ),
    Case(
        "periods without runs do not use up a slot",
        [ok("jan", T0.replace(month=1)), ok("mar", T0), ok("jun", T0.replace(month=6))],
        Retention(monthly=2, floor=0),
        {"jun", "mar"},
    ),
    Case(
        "ISO weeks: Sunday and the following Monday are different weeks",
        [ok("sun", T0 - timedelta(days=1)), ok("mon", T0), ok("tue", T0 + timedelta(days=1))],
        Retention(weekly=2, floor=0),
        {"tue", "sun"},
    ),
    Case(
        "ISO week spanning New Year is one week",
        [
            ok("dec29", datetime(2025, 12, 29, tzinfo=UTC)),
            ok("jan2", datetime(2026, 1, 2, tzinfo=UTC)),
            ok("dec22", datetime(2025, 12, 22, tzinfo=UTC)),
        ],
        Retention(weekly=2, floor=0),
        {"jan2", "dec22"},
    ),
    Case(
        "yearly keeps the newest of each year",
        [ok(f"y{y}m{m}", datetime(y, m, 1, tzinfo=UTC)) for y in (2023, 2024) for m in (1, 7)],
        Retention(yearly=5, floor=0),
        {"y2024m7", "y2023m7"},
    ),
    Case(
        "failed runs older than the newest success are deleted, newer ones kept",
        [
            ok("a", T0),
            failed("b", T0 + timedelta(hours=1)),
            ok("c", T0 + timedelta(hours=2)),
            failed("d", T0 + timedelta(hours=3)),
        ],
        Retention(floor=2),
        {"a", "c", "d"},
    ),
    Case(
        "failed runs never count as a tier's or the floor's run",
        [ok("a", T0), failed("b", T0 + timedelta(days=1)), failed("c", T0 + timedelta(days=2))],
        Retention(daily=1, floor=1),
        {"a", "b", "c"},
    ),
    Case(
        "only failures: all kept (nothing newer succeeded)",
        [failed("a", T0), failed("b", T0 + timedelta(hours=1))],
        Retention(floor=0),
        {"a", "b"},
    ),
    Case(
        "a run in progress is never deleted",
        [running("old", T0), *hourly_runs(3, T0 + timedelta(hours=1))],
        Retention(floor=1),
        {"old", "h002"},
    ),
    Case(
        "the floor protects runs the daily tier would delete",
        [ok(f"r{i}", T0 + timedelta(hours=i)) for i in range(5)],  # one day
        Retention(daily=7, floor=4),
        {"r4", "r3", "r2", "r1"},
    ),
    Case(
        "times in other zones are compared in UTC",
        [
            ok("late-utc", datetime(2026, 3, 2, 23, 30, tzinfo=UTC)),
            ok("early-next-utc", datetime(2026, 3, 3, 1, 0, tzinfo=timezone(timedelta(hours=2)))),
        ],
        Retention(daily=1, floor=0),
        {"late-utc"},
    ),
    Case("no runs", [], Retention(daily=3, floor=3), set()),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_retention_table(case: Case) -> None:
    decision = decide(case.runs, case.policy)
    assert set(decision.keep) == case.keep
    assert set(decision.delete) == {r.id for r in case.runs} - case.keep
    assert len(decision.keep) + len(decision.delete) == len(case.runs)


def test_decision_lists_newest_first_with_reasons() -> None:
    runs = hourly_runs(5)
    decision = decide(list(reversed(runs)), Retention(hourly=1, floor=2))
    assert decision.keep == ["h004", "h003"]
    assert decision.delete == ["h002", "h001", "h000"]
    assert decision.reasons == {"h004": ["hourly", "floor"], "h003": ["floor"]}


def test_the_verified_floor_keeps_the_newest_verified_runs() -> None:
    runs = [replace(r, verified=i in (1, 2)) for i, r in enumerate(hourly_runs(6))]
    decision = decide(runs, Retention(floor=1, floor_verified=1))
    assert decision.keep == ["h005", "h002"]
    assert decision.reasons == {"h005": ["floor"], "h002": ["verified floor"]}
    assert decide(runs, Retention(floor=1, floor_verified=3)).keep == ["h005", "h002", "h001"]


def test_naive_times_are_utc() -> None:
    naive = [
        Run("a", datetime(2026, 3, 2, 23, 59), True),
        ok("b", datetime(2026, 3, 3, tzinfo=UTC)),
    ]
    assert set(decide(naive, Retention(daily=2, floor=0)).keep) == {"a", "b"}
