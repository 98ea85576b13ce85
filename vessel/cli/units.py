"""Sizes and durations as people read them."""

from __future__ import annotations

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
    """A span as kubectl's AGE column shows it: `45s`, `3m12s`, `17m`, `2h5m`, `30h`,
    `4d6h`, `120d`, `3y10d`; coarser as it grows, two units at most."""
    s = int(seconds)
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 3 * 60:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    if h < 8 * 24:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    if d < 2 * 365:
        return f"{d}d"
    y = d // 365
    if d < 8 * 365:
        return f"{y}y{d % 365}d" if d % 365 else f"{y}y"
    return f"{y}y"
