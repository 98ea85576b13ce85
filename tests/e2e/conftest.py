"""The embedded stack the end-to-end modules run against: one per module (a module may
stop and start its parts), and a bus connection to its hub as its administrator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support import full_stack
from vessel.bus.nats_port import Bus
from vessel_dev.rig.stack import Stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with full_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture
async def bus(stack: Stack) -> AsyncIterator[Bus]:
    bus = Bus(source="/clusters/test/e2e")
    await bus.connect(stack.nats.url, name="e2e")
    yield bus
    await bus.close()
