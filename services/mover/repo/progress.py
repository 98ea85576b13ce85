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


INTERVAL = 1.0
"""Seconds between two reports of a running transfer."""


@dataclass
class Progress:
    files: int = 0
    bytes: int = 0
    """Bytes processed: read (and chunked, or written) plus skipped."""
    new_bytes: int = 0
    skipped: int = 0
    """Bytes of files found unchanged since the parent snapshot: counted, never read."""
    total: int | None = None
    """Bytes the whole run will process, when known: restores from the start; backups
    from the parent's size at first, then as measured by a walk beside the run."""
    total_files: int | None = None
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    stopped: threading.Event = field(default_factory=threading.Event, repr=False)

    def add(self, files: int, size: int, new: int = 0, *, skipped: bool = False) -> None:
        """`files` finished and `size` more bytes processed (`new` of them not yet in the
        repository); `skipped`: those bytes were not read (an unchanged file)."""
        if self.stopped.is_set():
            raise TransferStopped("stopped by its progress report")
        with self._lock:
            self.files += files
            self.bytes += size
            self.new_bytes += new
            self.skipped += size if skipped else 0

    @property
    def rate(self) -> float:
        """Bytes actually read (or written) a second: skipped ones do not count."""
        return (self.bytes - self.skipped) / max(time.monotonic() - self.started, 1e-6)


Report = Callable[[Progress], None]


@contextmanager
def reporting(
    progress: Progress, report: Report | None, interval: float | None = None
) -> Iterator[None]:
    """Call `report` every `interval` seconds (default `INTERVAL`) while the body runs, and
    once at the end."""
    interval = INTERVAL if interval is None else interval
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
