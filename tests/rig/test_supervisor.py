"""The embedded default kept up for the CLI starts again a service that exits, waiting
longer after each exit in a row, says why each time, and sums up what exited."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from vessel_dev.rig.processes import Process
from vessel_dev.rig.supervisor import Supervisor


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _exited(proc: Process) -> None:
    assert proc.popen is not None
    proc.popen.wait(10)


def test_a_service_that_exits_is_started_again_after_growing_waits(tmp_path: Path) -> None:
    crashing = Process(
        "mover-a",
        [sys.executable, "-c", "import sys; print('bucket unreachable'); sys.exit(3)"],
        tmp_path / "mover.log",
    )
    steady = Process(
        "gateway", [sys.executable, "-c", "import time; time.sleep(30)"], tmp_path / "gw.log"
    )
    said: list[str] = []
    clock = Clock()
    supervisor = Supervisor([crashing, steady], say=said.append, clock=clock)
    crashing.start()
    steady.start()
    try:
        _exited(crashing)
        waits = []
        for _ in range(4):
            supervisor.check()  # the exit is seen
            waits.append(float(said[-1].split(" again in ")[1].split("s;")[0]))
            clock.now += waits[-1] - 0.01
            supervisor.check()  # not yet
            assert not crashing.alive() and said[-1].startswith("mover-a exited")
            clock.now += 0.01
            supervisor.check()  # started again
            assert said[-1] == "mover-a: started again"
            _exited(crashing)
        assert waits == [1, 2, 4, 8]
        assert "exited (code 3)" in said[0] and said[0].endswith(
            "its last line: bucket unreachable"
        )
        clock.now += 120  # up long enough: its next exit waits the first wait again
        supervisor.check()
        assert said[-1].split(" again in ")[1].startswith("1s")
        assert steady.alive() and "gateway" not in supervisor.exits
        assert supervisor.summary() == "services exited and were started again: mover-a x5"
    finally:
        crashing.stop()
        steady.stop()


def test_a_run_without_exits_says_so(tmp_path: Path) -> None:
    running = Process(
        "gateway", [sys.executable, "-c", "import time; time.sleep(30)"], tmp_path / "g.log"
    )
    running.start()
    try:
        supervisor = Supervisor([running], say=lambda _: None)
        supervisor.check()
        time.sleep(0.1)
        supervisor.check()
        assert supervisor.summary() == "no service exited" and not supervisor.exits
    finally:
        running.stop()
