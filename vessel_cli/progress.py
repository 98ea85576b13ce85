"""Live progress of an operation in the terminal: one line per volume transfer (files,
bytes, rate, ETA), redrawn in place on a terminal and printed as one line per update
otherwise (logs and pipes keep every line, no control characters)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

from vessel.api.v1 import protection_pb2 as ppb
from vessel.api.v1 import vessel_pb2 as pb
from vessel_cli.units import duration as duration  # re-exported: the ETA clock
from vessel_cli.units import size as size

UP_AND_CLEAR = "\x1b[{n}F"
CLEAR_LINE = "\x1b[2K"


def progress_line(p: ppb.TransferProgress) -> str:
    """`shop/data  backup  120/400 files  12.0 MiB / 40.0 MiB (30%)  4.0 MiB/s  ETA 0:00:07`."""
    what = f"{p.namespace}/{p.claim}" if p.claim else p.transfer_id
    moved = size(p.bytes)
    if p.HasField("total_bytes") and p.total_bytes > 0:
        percent = min(100, 100 * p.bytes // p.total_bytes)
        moved += f" / {size(p.total_bytes)} ({percent}%)"
    files = f"{p.files}/{p.total_files}" if p.HasField("total_files") else str(p.files)
    parts = [what, p.direction, f"{files} files", moved, f"{size(p.bytes_per_second)}/s"]
    if p.HasField("eta_seconds"):
        parts.append(f"ETA {duration(p.eta_seconds)}")
    return "  ".join(parts)


def operation_line(op: pb.Operation) -> str:
    return f"{op.kind} {op.id}: {op.phase}" + (f" - {op.message}" if op.message else "")


class ProgressView:
    """Shows a stream of `OperationUpdate`s on `out`; `tty` chooses redrawing."""

    def __init__(self, out: TextIO, tty: bool) -> None:
        self.out, self.tty = out, tty
        self.lines: dict[str, str] = {}
        self.drawn = 0
        self.phase = ""
        self.last: pb.Operation | None = None

    def show(self, updates: Iterable[ppb.OperationUpdate]) -> pb.Operation | None:
        """Consume the updates; the last operation seen (None: the stream had none)."""
        for update in updates:
            if update.HasField("progress"):
                self._progress(update.progress)
            elif update.HasField("operation"):
                self._operation(update.operation)
        return self.last

    def _progress(self, p: ppb.TransferProgress) -> None:
        line = progress_line(p)
        self.lines[p.transfer_id] = line
        if self.tty:
            self._redraw()
        else:
            print(line, file=self.out, flush=True)

    def _operation(self, op: pb.Operation) -> None:
        self.last = op
        if op.phase == self.phase:
            return
        self.phase = op.phase
        if self.tty:  # the phase line goes above the volume lines, which are redrawn below
            self._clear()
            print(operation_line(op), file=self.out, flush=True)
            self._redraw()
        else:
            print(operation_line(op), file=self.out, flush=True)

    def _clear(self) -> None:
        if self.drawn:
            self.out.write(UP_AND_CLEAR.format(n=self.drawn))
            self.out.write((CLEAR_LINE + "\n") * self.drawn)
            self.out.write(UP_AND_CLEAR.format(n=self.drawn))
        self.drawn = 0

    def _redraw(self) -> None:
        if self.drawn:
            self.out.write(UP_AND_CLEAR.format(n=self.drawn))
        for line in self.lines.values():
            self.out.write(CLEAR_LINE + line + "\n")
        self.drawn = len(self.lines)
        self.out.flush()
