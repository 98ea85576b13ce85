"""Sizes and durations as people read them."""

from __future__ import annotations

from vessel_cli.humanize import age

UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def size(n: float) -> str:
    """`512 B`, `1.5 KiB`, `1.2 GiB`."""
    for unit in UNITS:
        if abs(n) < 1024 or unit == UNITS[-1]:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def duration(seconds: float) -> str:
    """`1:02:05`: a clock, for ETAs that count down."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def human(seconds: float) -> str:
    """A span as kubectl's AGE column shows it (a negative one as `0s`)."""
    return age(max(seconds, 0.0))
