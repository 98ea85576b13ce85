"""Each enabled schedule's interval as a gauge. Beside each app's last good run
(`operation_gauges.py`) it makes "no good backup in twice the interval" an alert (the
chart's PrometheusRule, `VesselProtectionOverdue`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from croniter import croniter

from vessel.contracts.protection import ScheduleSpec
from vessel.contracts.schedule_rules import cron_expression
from vessel.telemetry import metrics

_SECONDS: dict[str, float] = {}
"""Cron expression -> seconds between its next two times (computed once: a tick may see
thousands of schedules)."""


def interval_seconds(expression: str, now: datetime) -> float:
    if expression not in _SECONDS:
        times = croniter(expression, now)
        first = times.get_next(datetime)
        _SECONDS[expression] = (times.get_next(datetime) - first).total_seconds()
    return _SECONDS[expression]


class IntervalGauges:
    def __init__(self, every: float = 15.0) -> None:
        self.every = every
        self.said: datetime | None = None

    def report(self, specs: Iterable[ScheduleSpec], now: datetime) -> None:
        """Set the gauges, at most every `every` seconds; a schedule removed or disabled
        since is no longer shown."""
        if self.said is not None and (now - self.said).total_seconds() < self.every:
            return
        self.said = now
        metrics.SCHEDULE_INTERVAL.clear()
        for spec in specs:
            if spec.enabled:
                seconds = interval_seconds(cron_expression(spec), now)
                metrics.SCHEDULE_INTERVAL.labels(spec.id, spec.app_id, spec.kind).set(seconds)
