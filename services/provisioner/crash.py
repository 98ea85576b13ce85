"""Crash points for tests: `VESSEL_TEST_CRASH_AFTER=<point>` makes the process die there.

Read in this one place. The process exits at once with status 137 (as if SIGKILLed): no
cleanup, no flushing, exactly what a node losing power leaves behind.
"""

from __future__ import annotations

import logging
import os

CRASH_ENV = "VESSEL_TEST_CRASH_AFTER"
log = logging.getLogger("vessel.provisioner")


def crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        log.critical("crash point %r reached: exiting with status 137", name)
        os._exit(137)
