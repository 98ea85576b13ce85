"""Stopping tasks for good.

On Python 3.11 `asyncio.wait_for`, which nats-py uses for every request, returns the
answer instead of raising when it is cancelled just as that answer arrives (fixed in 3.12,
gh-86296). One `cancel()` can so be lost, and a loop carries on to its next sleep while
whoever stops it waits forever. Stopping therefore cancels again, every `AGAIN` seconds,
until each task has ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

AGAIN = 1.0


async def cancel_and_wait(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel `tasks` and return once all have ended. None of their errors is raised here;
    a caller that wants one reads it with `result()`."""
    ended = list(tasks)
    pending = set(ended)
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=AGAIN)
    for task in ended:
        if not task.cancelled():
            task.exception()  # retrieved: not reported again when it is collected
