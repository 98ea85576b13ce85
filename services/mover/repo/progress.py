"""Progress of a running backup or restore, reported at a steady cadence."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field


class TransferStopped(Exception):
    """Raised by a progress report to stop the run (its operation was canceled): the
    worker stops at its next file or chunk; nothing half-written is ever published."""


@dataclass
class Progress:
    files: int = 0
    bytes: int = 0
    new_bytes: int = 0
    total: int | None = None
    """Bytes the whole run will process, when known in advance (restores)."""
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    stopped: threading.Event = field(default_factory=threading.Event, repr=False)

    def add(self, files: int, size: int, new: int = 0) -> None:
        if self.stopped.is_set():
            raise TransferStopped("stopped by its progress report")
        with self._lock:
            self.files += files
            self.bytes += size
            self.new_bytes += new

    @property
    def rate(self) -> float:
        return self.bytes / max(time.monotonic() - self.started, 1e-6)


Report = Callable[[Progress], None]


@contextmanager
def reporting(progress: Progress, report: Report | None, interval: float = 1.0) -> Iterator[None]:
    """Call `report` every `interval` seconds while the body runs, and once at the end."""
    if report is None:
        yield
        return
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(interval):
            try:
                report(progress)
            except TransferStopped:
                progress.stopped.set()
                return

    thread = threading.Thread(target=tick, daemon=True, name="progress")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        if not progress.stopped.is_set():
            with suppress(TransferStopped):  # the run is over either way
                report(progress)
