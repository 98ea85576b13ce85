"""The operation ids a run ticket gives out: its run's, and the deletion's retention asks
for. Derived, never random, so every replica and every retry names the same operation and
a repeated command is one run (the tickets themselves: `state/tickets.py`)."""

from __future__ import annotations

import hashlib
from datetime import datetime

MAX_ID = 128


def derived_id(base: str, suffix: str) -> str:
    """`<base>-<suffix>`, deterministic and within the 128 characters of an Identifier."""
    candidate = f"{base}-{suffix}"
    if len(candidate) <= MAX_ID:
        return candidate
    digest = hashlib.sha256(base.encode()).hexdigest()[:32]
    return f"{base[: MAX_ID - len(suffix) - 34]}-{digest}-{suffix}"


def run_operation_id(schedule_id: str, due: datetime) -> str:
    """The same for every replica and every retry, so a repeated command is one run."""
    return derived_id(f"sched-{schedule_id}", str(int(due.timestamp())))
