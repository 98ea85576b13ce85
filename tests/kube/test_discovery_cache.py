"""The kube port keeps API discovery to itself.

The official client caches discovery in one file per server URL in the shared temp
directory. Another process half-way through rewriting that file, or a previous server on
the same port, must not reach this client.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from pathlib import Path

import pytest
import yaml

from vessel.kube.client import KubeCluster
from vessel_dev.emulators.kube import KubeEmulator


async def test_a_shared_cache_file_is_never_read(
    kube_emulator: tuple[KubeEmulator, Path], caplog: pytest.LogCaptureFixture
) -> None:
    _, kubeconfig = kube_emulator
    server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    name = f"osrcp-{hashlib.md5(server.encode(), usedforsecurity=False).hexdigest()}.json"
    shared = Path(tempfile.gettempdir()) / name
    shared.write_text("")  # what a reader sees while another process rewrites it
    try:
        with caplog.at_level(logging.ERROR):
            kube = KubeCluster(kubeconfig, "cache")
            config_map = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "cached", "namespace": "default"},
            }
            await kube.create(config_map)
            assert await kube.get("v1", "ConfigMap", "cached", "default") is not None
        assert "load cache error" not in caplog.text
        assert shared.read_text() == "", "the client wrote the shared cache file"
    finally:
        shared.unlink(missing_ok=True)
