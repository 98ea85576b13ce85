"""A NATS outage in the log: one line when the connection is lost, one a minute while it
stays away (however many reconnects failed), one when it is back, saying how long."""

from __future__ import annotations

import logging
import time

import pytest

from vessel.bus.nats_port import Outage


def test_an_outage_is_three_kinds_of_line_not_a_flood(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="vessel.bus")
    outage = Outage("nats://hub:4222", every=0.2)
    outage.lost()
    outage.lost()  # told twice (several callbacks): still one line
    for _ in range(50):  # reconnect attempts within the first period
        outage.attempt()
    time.sleep(0.25)
    for _ in range(50):
        outage.attempt()
    outage.back()
    lines = [r.getMessage() for r in caplog.records if r.name == "vessel.bus"]
    assert lines[0] == "NATS connection to nats://hub:4222 lost; reconnecting"
    assert len(lines) == 3, lines
    assert lines[1].startswith("NATS at nats://hub:4222 still away after ")
    assert lines[1].endswith("(51 reconnect attempts)")
    assert lines[2].startswith("NATS connection to nats://hub:4222 back after 0.")
    outage.back()  # back again without a loss in between: nothing more
    assert len([r for r in caplog.records if r.name == "vessel.bus"]) == 3
