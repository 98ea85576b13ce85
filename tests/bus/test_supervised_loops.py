"""No background loop ends its service: one that fails is started again after waits that
double, counted in a metric and kept out of readiness meanwhile; its first failure is
logged with the traceback, later ones in a line, and its recovery once."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging

import pytest
from prometheus_client import REGISTRY

from vessel.bus import inbox
from vessel.bus.inbox import Loop, supervised
from vessel.stopping import cancel_and_wait

pytestmark = pytest.mark.timeout(30)


def failures(name: str) -> float:
    return REGISTRY.get_sample_value("vessel_loop_failures_total", {"loop": name}) or 0.0


async def test_a_failing_loop_is_started_again_until_it_runs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(inbox, "FIRST_WAIT", 0.05)
    monkeypatch.setattr(inbox, "STEADY", 0.3)
    starts: list[float] = []
    running = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def report_capacity() -> None:
        starts.append(loop.time())
        if len(starts) <= 3:
            raise ConnectionError(f"nats: timeout #{len(starts)}")
        running.set()
        await asyncio.Event().wait()

    name = "report capacity (test)"
    before = failures(name)
    down: list[bool] = []
    caplog.set_level(logging.INFO, logger="vessel.bus")
    task = asyncio.create_task(supervised(Loop(name, report_capacity)))
    try:
        while len(starts) < 2:
            down.append(name in inbox.DOWN)
            await asyncio.sleep(0.01)
        await asyncio.wait_for(running.wait(), 10)
        assert True in down  # not ready while it waited to start again
        await asyncio.sleep(0.5)  # past STEADY: its failures are behind it
        assert name not in inbox.DOWN and not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(g >= w * 0.9 for g, w in zip(gaps, (0.05, 0.1, 0.2), strict=True)), gaps
    assert failures(name) == before + 3
    records = [r for r in caplog.records if name in r.getMessage()]
    assert records[0].exc_info is not None and "failed; starting it again" in records[0].message
    assert all(r.exc_info is None for r in records[1:])
    assert "failed again (ConnectionError('nats: timeout #2'))" in records[1].getMessage()
    assert records[-1].getMessage() == f"{name} runs again after 3 failures"


async def test_a_loop_that_returns_is_not_started_again() -> None:
    runs = 0

    async def once() -> None:
        nonlocal runs
        runs += 1

    await asyncio.wait_for(supervised(Loop("once (test)", once)), 5)
    assert runs == 1


async def test_stopping_a_supervised_loop_waits_for_its_clean_up() -> None:
    cleaned = asyncio.Event()

    async def watches() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0.1)  # stopping its watches takes a moment
            cleaned.set()

    task = asyncio.create_task(supervised(Loop("watches (test)", watches)))
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert cleaned.is_set()


async def test_a_loop_that_loses_a_cancel_is_still_stopped() -> None:
    """On Python 3.11 a cancel that lands as a nats-py request is answered is lost: the
    loop carries on to its next sleep. Stopping cancels again until it ends."""
    lost = 0

    async def heartbeats() -> None:
        nonlocal lost
        while True:
            try:
                await asyncio.Event().wait()  # the request
            except asyncio.CancelledError:
                lost += 1  # as `wait_for` does when the answer came with the cancel
            await asyncio.sleep(3600)

    task = asyncio.create_task(supervised(Loop("heartbeats (test)", heartbeats)))
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 5)
    assert lost == 1 and task.cancelled()


async def test_cancel_and_wait_ends_every_task_and_keeps_their_errors() -> None:
    async def stubborn() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
        await asyncio.sleep(3600)

    async def failing_clean_up() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            raise RuntimeError("clean-up failed")

    tasks = [asyncio.create_task(stubborn()), asyncio.create_task(failing_clean_up())]
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait(tasks), 5)
    assert tasks[0].cancelled()
    with pytest.raises(RuntimeError, match="clean-up failed"):
        tasks[1].result()
