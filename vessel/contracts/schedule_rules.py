"""The rules a schedule must follow beyond its model's field types, in one place with no
service imports: protection rejects a `PutSchedule` that breaks them, and the gateway can
check the same rules before it sends the command.

Schedules run in UTC. Named frequencies are shorthands for a 5-field cron expression
(`cron_expression`), so one calculation of due times serves every frequency.
"""

from __future__ import annotations

from datetime import UTC, datetime

from croniter import CroniterBadDateError, croniter

from vessel.contracts.protection import ScheduleSpec

Violation = tuple[str, str]
"""(field, message); fields are named as in `PutSchedule`, e.g. `schedule.cron`."""


def cron_expression(spec: ScheduleSpec) -> str:
    """The 5-field cron expression (minute hour day-of-month month day-of-week, UTC) of a
    schedule, whatever its frequency."""
    if spec.frequency == "cron":
        return spec.cron.strip()
    if spec.frequency == "hourly":
        return f"{spec.minute} * * * *"
    if spec.frequency == "daily":
        return f"{spec.minute} {spec.hour} * * *"
    if spec.frequency == "weekly":
        return f"{spec.minute} {spec.hour} * * {spec.day_of_week}"
    return f"{spec.minute} {spec.hour} {spec.day_of_month} * *"


def cron_problem(expression: str) -> str | None:
    """Why `expression` is not a valid 5-field cron expression, or None."""
    fields = expression.split()
    if len(fields) != 5:
        return (
            f"{expression!r} has {len(fields)} fields; a cron expression has 5 "
            "(minute hour day-of-month month day-of-week, UTC)"
        )
    if not croniter.is_valid(expression):
        return f"{expression!r} is not a valid cron expression"
    try:
        croniter(expression, datetime(2000, 1, 1, tzinfo=UTC)).get_next(datetime)
    except CroniterBadDateError:
        return f"{expression!r} names no date that exists (e.g. February 30)"
    return None


def validate_schedule(spec: ScheduleSpec) -> list[Violation]:
    """Every rule `spec` breaks, as (field, message); empty when it is acceptable."""
    violations: list[Violation] = []
    if spec.frequency == "cron":
        if not spec.cron.strip():
            violations.append(("schedule.cron", "frequency cron needs a cron expression"))
        elif (problem := cron_problem(spec.cron)) is not None:
            violations.append(("schedule.cron", problem))
    elif spec.cron.strip():
        violations.append(
            (
                "schedule.cron",
                f"a cron expression is only used with frequency cron, not with {spec.frequency}",
            )
        )
    r = spec.retention
    if r.floor == 0 and not any((r.hourly, r.daily, r.weekly, r.monthly, r.yearly)):
        violations.append(
            (
                "schedule.retention",
                "keeps no run: set a floor or at least one of hourly, daily, weekly, monthly, "
                "yearly above 0",
            )
        )
    return violations
