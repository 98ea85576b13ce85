"""Keeps the embedded default's services running while it is kept up for the CLI
(`vessel-embedded --keep`): a service that exits is started again after a wait that
doubles with each exit in a row (1 s up to 30 s; a service up for a minute starts afresh),
and every exit is reported with its code and the last line it logged. What happened is
summed up at the end, so a kept stack that lost a service never reads as a clean run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from vessel_dev.rig.processes import Process

FIRST_WAIT = 1.0
LONGEST_WAIT = 30.0
STEADY = 60.0
"""Seconds up after which a service's next exit waits `FIRST_WAIT` again."""


@dataclass
class Supervisor:
    services: Sequence[Process]
    say: Callable[[str], None] = print
    clock: Callable[[], float] = time.monotonic
    exits: dict[str, int] = field(default_factory=dict)
    """Exits seen, by service name."""
    _due: dict[str, float] = field(default_factory=dict)
    _wait: dict[str, float] = field(default_factory=dict)
    _started: dict[str, float] = field(default_factory=dict)

    def check(self) -> None:
        """Note services that exited and start those whose wait is over; call it often."""
        now = self.clock()
        for proc in self.services:
            name = proc.name
            if proc.alive():
                continue
            if name not in self._due:
                self._exited(proc, now)
            elif now >= self._due[name]:
                del self._due[name]
                self._started[name] = now
                proc.start()
                self.say(f"{name}: started again")

    def _exited(self, proc: Process, now: float) -> None:
        name = proc.name
        self.exits[name] = self.exits.get(name, 0) + 1
        steady = now - self._started.get(name, now) >= STEADY
        doubled = self._wait.get(name, 0) * 2 or FIRST_WAIT
        wait = FIRST_WAIT if steady else min(doubled, LONGEST_WAIT)
        self._wait[name], self._due[name] = wait, now + wait
        code = proc.popen.returncode if proc.popen is not None else None
        last = (proc.tail(1) or "(nothing logged)").strip()
        self.say(f"{name} exited (code {code}), again in {wait:g}s; its last line: {last}")

    def summary(self) -> str:
        """One line: no exits, or which services exited how often."""
        if not self.exits:
            return "no service exited"
        return "services exited and were started again: " + ", ".join(
            f"{name} x{count}" for name, count in sorted(self.exits.items())
        )
