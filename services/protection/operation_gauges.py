"""Operations as gauges, so that one stuck InProgress is an alert: how many operations are
in each phase, by kind, and how long the oldest one not yet ended has run. The same view
tells the watchdog which operations have not ended.

Protection follows KV `operations` with a watch (no reads per scrape) and sets the gauges
every `interval`; the chart's PrometheusRule alerts on the age (`charts/vessel`,
`prometheusRule`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError

from vessel.bus.nats_port import KeyValue
from vessel.contracts.operations import Operation, Phase
from vessel.stopping import cancel_and_wait
from vessel.telemetry import metrics

log = logging.getLogger("vessel.protection")


@dataclass(frozen=True)
class Seen:
    kind: str
    phase: str
    created: datetime
    updated: datetime
    done: bool


GOOD_KINDS = ("snapshot", "backup", "verify")
"""Kinds whose newest completed run per app is exported (a completed verify: passed)."""


class OperationGauges:
    def __init__(self, operations: KeyValue, interval: float = 15.0) -> None:
        self.operations, self.interval = operations, interval
        self.seen: dict[str, Seen] = {}
        self._reported: set[tuple[str, str]] = set()
        self.last_good: dict[tuple[str, str], datetime] = {}
        """(app id, kind) -> when its newest snapshot or backup that completed ended; kept
        when the record goes (retention), so an app's protection is not forgotten."""
        self.last_verification: dict[str, tuple[datetime, bool]] = {}
        """App id -> when its newest verification ended, and whether it passed."""

    async def run(self) -> None:
        watcher = asyncio.create_task(self._follow(), name="follow operations")
        try:
            while True:
                await asyncio.sleep(self.interval)
                self.report(datetime.now(UTC))
        finally:
            await cancel_and_wait([watcher])

    async def _follow(self) -> None:
        while True:
            try:
                async for key, value in self.operations.watch():
                    self.note(key, value)
            except Exception:
                log.warning("operations watch lost; following again")
            await asyncio.sleep(self.interval)

    def note(self, key: str, value: bytes | None) -> None:
        if value is None:
            self.seen.pop(key, None)
            return
        try:
            op = Operation.model_validate_json(value)
        except ValidationError:
            return  # not an operation record; the reader that needs it says so
        self.seen[key] = Seen(op.kind, op.phase.value, op.created, op.updated, op.done)
        if op.phase == Phase.COMPLETED and op.app_id and op.kind in GOOD_KINDS:
            known = self.last_good.get((op.app_id, op.kind))
            if known is None or op.updated > known:
                self.last_good[(op.app_id, op.kind)] = op.updated
        if op.kind == "verify" and op.done and op.app_id and op.phase != Phase.CANCELED:
            known_at, _ = self.last_verification.get(op.app_id, (None, False))
            if known_at is None or op.updated >= known_at:
                self.last_verification[op.app_id] = (op.updated, op.phase == Phase.COMPLETED)

    def report(self, now: datetime) -> None:
        counts = Counter((s.kind, s.phase) for s in self.seen.values())
        for kind, phase in self._reported - set(counts):
            metrics.OPERATIONS_NOW.labels(kind, phase).set(0)
        for (kind, phase), count in counts.items():
            metrics.OPERATIONS_NOW.labels(kind, phase).set(count)
        self._reported = set(counts)
        oldest: dict[str, datetime] = {}
        for s in self.seen.values():
            if not s.done and (s.kind not in oldest or s.created < oldest[s.kind]):
                oldest[s.kind] = s.created
        for kind in {s.kind for s in self.seen.values()}:
            age = (now - oldest[kind]).total_seconds() if kind in oldest else 0.0
            metrics.OPERATION_OLDEST_RUNNING.labels(kind).set(max(age, 0.0))
        for (app, kind), ended in self.last_good.items():
            metrics.APP_LAST_SUCCESS.labels(app, kind).set(ended.timestamp())
            if kind == "verify":
                metrics.BACKUP_LAST_VERIFIED.labels(app).set(ended.timestamp())
        for app, (_, passed) in self.last_verification.items():
            metrics.LAST_VERIFICATION_PASSED.labels(app).set(1 if passed else 0)
