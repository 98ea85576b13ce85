"""Fixtures for discovery over real NATS and emulated API servers (over HTTP)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.discovery.lab import Lab
from vessel.bus.nats_port import Bus
from vessel.stopping import cancel_and_wait
from vessel_dev.rig.processes import NatsServer


@pytest.fixture
async def lab(bus: Bus, nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[Lab]:
    lab = Lab(bus, tmp_path, nats_server.url)
    since = datetime.now(UTC)

    async def collect() -> None:
        async for _, event in bus.tail("vessel.evt.discovery.>", since=since):
            lab.events.append(event)

    collector = asyncio.create_task(collect())
    try:
        yield lab
    finally:
        await lab.stop_discovery()
        await cancel_and_wait([collector])
        for c in lab.clusters:
            if c.proxy is not None:
                await c.proxy.close()
            c.emulator.stop()
