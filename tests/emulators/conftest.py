"""Fixtures shared by the emulator tests: an API client on a fresh emulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client import ApiClient

from tests.emulators.support import running
from vessel_dev.emulators.kube import KubeEmulator


@pytest.fixture
def emulated(tmp_path: Path) -> Iterator[tuple[KubeEmulator, ApiClient]]:
    """A fresh emulator and an official client connected through its kubeconfig."""
    with running(tmp_path, allow_exec=True) as pair:
        yield pair


@pytest.fixture
def api(emulated: tuple[KubeEmulator, ApiClient]) -> ApiClient:
    return emulated[1]


@pytest.fixture
def core(api: ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)
