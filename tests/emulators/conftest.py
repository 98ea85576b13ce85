"""Fixtures shared by the emulator tests: an API client on a fresh emulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from tests.emulators.support import running


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ApiClient]:
    with running(tmp_path, allow_exec=True) as (_, api_client):
        yield api_client


@pytest.fixture
def core(api: ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)
