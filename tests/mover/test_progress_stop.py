"""A progress report that raises `TransferStopped` stops the run it reports on."""

from __future__ import annotations

import threading

import pytest

from services.mover.repo.progress import Progress, TransferStopped, reporting


def test_a_stopping_report_makes_the_worker_stop_at_its_next_step() -> None:
    progress = Progress()
    reported = threading.Event()
    calls: list[int] = []

    def report(p: Progress) -> None:
        calls.append(p.files)
        reported.set()
        raise TransferStopped("canceled")

    with pytest.raises(TransferStopped), reporting(progress, report, interval=0.01):
        progress.add(1, 10)
        assert reported.wait(5)
        for _ in range(1000):  # the worker's next steps
            progress.add(1, 10)
    assert calls == [1]  # no further reports, not even the final one


def test_a_normal_run_gets_a_final_report() -> None:
    progress = Progress()
    seen: list[int] = []
    with reporting(progress, lambda p: seen.append(p.files), interval=60):
        progress.add(3, 30)
    assert seen == [3]
