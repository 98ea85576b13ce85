"""The `compression` pool attribute (Trident's name): a btrfs pool that declares it stores
its volumes compressed (zstd), so a claim holds more than its size of compressible data;
a StorageClass asking `compression: "true"` lands there; a dir pool cannot and is refused
when configured."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.provisioner.adapters.btrfs import BtrfsBackend
from services.provisioner.adapters.dirfs import DirBackend
from services.provisioner.pools import build_pools
from tests.provisioner.backend_contract import MiB, fill
from tests.provisioner.lab import Lab, running_lab
from vessel.bus.nats_port import Bus
from vessel.config import BackendConfig, ConfigError
from vessel.kube.client import KubeCluster


def config(kind: str, path: Path) -> BackendConfig:
    return BackendConfig.model_validate(
        {
            "name": "fast",
            "type": kind,
            "path": str(path),
            "pools": [
                {"name": "packed", "attributes": {"compression": True}},
                {"name": "plain"},
            ],
        }
    )


@pytest.fixture
async def pooled(kube: KubeCluster, bus: Bus, btrfs_root: Path) -> AsyncIterator[Lab]:
    backend = BtrfsBackend("fast", btrfs_root, 256 * MiB)
    pools = build_pools(config("btrfs", btrfs_root), backend.type, backend.capabilities)
    async with running_lab(kube, bus, [backend]) as lab:
        await lab.start(pools=pools)
        yield lab


async def test_a_compressed_pools_claim_holds_more_than_its_size(pooled: Lab) -> None:
    packed = await pooled.storage_class("packed", {"compression": "true"})
    plain = await pooled.storage_class("plain", {"compression": "false"})
    await pooled.claim("logs", packed, "16Mi")
    await pooled.claim("raw", plain, "16Mi")
    _, logs = await pooled.bound("logs")
    _, raw = await pooled.bound("raw")
    assert logs["metadata"]["annotations"]["vessel.io/pool"] == "packed"
    assert raw["metadata"]["annotations"]["vessel.io/pool"] == "plain"
    path = Path(logs["spec"]["hostPath"]["path"])
    shown = await asyncio.to_thread(
        subprocess.run,
        ["btrfs", "property", "get", str(path), "compression"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == "compression=zstd"
    text = b"".join(b"%08d a log line that repeats itself\n" % i for i in range(40000))[:MiB]
    written, error = fill(path / "app.log", 48 * MiB, text)  # three times the claim's size
    assert error is None and written == 48 * MiB
    written, error = fill(Path(raw["spec"]["hostPath"]["path"]) / "app.log", 48 * MiB, text)
    assert error is not None and written <= 16 * MiB  # the same data, uncompressed


def test_a_dir_pool_cannot_declare_compression(tmp_path: Path) -> None:
    backend = DirBackend("fast", tmp_path)
    with pytest.raises(ConfigError) as refused:
        build_pools(config("dir", tmp_path), backend.type, backend.capabilities)
    assert str(refused.value) == (
        "backend fast pool packed: attribute compression: true, but the dir backend has no "
        "'compression' capability"
    )
