"""An in-test OTLP collector, and this process's tracing pointed at it for one test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.telemetry.collector import Collector
from vessel.telemetry import tracing


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def exported(collector: Collector) -> Iterator[Collector]:
    """Spans of this process exported to `collector` as service vessel-tests;
    `tracing.flush()` sends what is buffered."""
    tracing.configure("tests", collector.endpoint)
    yield collector
    tracing.shutdown()
