"""Fixtures for the Helm chart checks: the chart rendered for every values case."""

from __future__ import annotations

import pytest

from tests.deploy.chart_support import Rendering, _renderings


@pytest.fixture(scope="module")
def renderings() -> tuple[Rendering, ...]:
    return _renderings()
