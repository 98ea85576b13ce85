"""Ages and durations read like kubectl's AGE column; sizes in binary units."""

from __future__ import annotations

import pytest

from vessel_cli.units import human, size

MINUTE, HOUR, DAY = 60, 3600, 86400


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (-5, "0s"),
        (45, "45s"),
        (119, "119s"),
        (125, "2m5s"),
        (4 * MINUTE, "4m"),
        (10 * MINUTE + 30, "10m"),
        (2 * HOUR + 5 * MINUTE, "125m"),
        (3 * HOUR, "3h"),
        (5 * HOUR + 30 * MINUTE, "5h30m"),
        (30 * HOUR + 59 * MINUTE, "30h"),
        (4 * DAY + 6 * HOUR, "4d6h"),
        (2 * DAY, "2d"),
        (120 * DAY + 23 * HOUR, "120d"),
        (3 * 365 * DAY + 10 * DAY, "3y10d"),
        (9 * 365 * DAY + 10 * DAY, "9y"),
    ],
)
def test_human_durations(seconds: int, shown: str) -> None:
    assert human(seconds) == shown


def test_sizes() -> None:
    assert size(0) == "0 B" and size(1023) == "1023 B" and size(4096) == "4.0 KiB"
    assert size(1288490189) == "1.2 GiB" and size(3 << 50) == "3.0 PiB"
