"""`pool.capacity.low`: published once when a pool's free space crosses below its threshold
after a provisioning or an expansion, and again only after it went back above."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from services.provisioner.adapters.btrfs import BtrfsBackend
from services.provisioner.adapters.dirfs import DirBackend
from services.provisioner.pools import build_pools
from tests.provisioner.lab import Lab, running_lab, wait_for
from vessel.bus.nats_port import Bus
from vessel.config import BackendConfig, PoolConfig
from vessel.kube.client import KubeCluster

MiB = 1 << 20


def test_the_threshold_defaults_to_ten_percent_and_is_bounded() -> None:
    assert PoolConfig(name="p").low_capacity_percent == 10
    with pytest.raises(ValueError, match="low_capacity_percent"):
        PoolConfig.model_validate({"name": "p", "low_capacity_percent": 150})


async def _gone(lab: Lab, name: str) -> bool:
    return await lab.get_pv(name) is None


async def test_low_capacity_is_announced_once_per_crossing(
    kube: KubeCluster, bus: Bus, tmp_path: Path
) -> None:
    root = tmp_path / "small"
    root.mkdir()
    config = BackendConfig(name="small", type="dir", path=root, capacity_bytes=100 * MiB)
    backend = DirBackend("small", root, 100 * MiB)
    pools = build_pools(config, backend.type, backend.capabilities)
    async with running_lab(kube, bus, [backend]) as lab:
        await lab.start(pools=pools)
        sc = await lab.storage_class("low")
        await lab.claim("half", sc, "50Mi")
        await lab.bound("half")
        await asyncio.sleep(0.3)
        assert lab.published("pool.capacity.low") == []  # 50% free: above 10%

        await lab.claim("most", sc, "45Mi")
        _, most = await lab.bound("most")
        [low] = await lab.wait_published("pool.capacity.low")
        assert low == {
            "cluster": lab.cluster,
            "backend": "small",
            "pool": "default",
            "free_bytes": 5 * MiB,
            "total_bytes": 100 * MiB,
            "threshold_percent": 10.0,
        }
        await lab.claim("crumb", sc, "2Mi")  # still below: no second event
        await lab.bound("crumb")
        await asyncio.sleep(1.5)  # a resync passes too
        assert len(lab.published("pool.capacity.low")) == 1

        await lab.delete_claim("most")  # back above the threshold...
        await wait_for(lambda: _gone(lab, most["metadata"]["name"]), "PV deleted")
        await lab.claim("again", sc, "45Mi")  # ...and below again: announced again
        await lab.bound("again")
        second = (await lab.wait_published("pool.capacity.low", 2))[1]
        assert second["free_bytes"] == 3 * MiB


async def test_expansion_crossing_the_threshold_is_announced_on_btrfs(
    kube: KubeCluster, bus: Bus, btrfs_root: Path
) -> None:
    config = BackendConfig.model_validate(
        {
            "name": "fast",
            "type": "btrfs",
            "path": str(btrfs_root),
            "capacity_bytes": 200 * MiB,
            "pools": [{"name": "gold", "low_capacity_percent": 25}],
        }
    )
    backend = BtrfsBackend("fast", btrfs_root, 200 * MiB)
    pools = build_pools(config, backend.type, backend.capabilities)
    async with running_lab(kube, bus, [backend]) as lab:
        await lab.start(pools=pools)
        sc = await lab.storage_class("grow", allowVolumeExpansion=True)
        claim = await lab.claim("data", sc, "100Mi")
        await lab.bound("data")
        await asyncio.sleep(0.3)
        assert lab.published("pool.capacity.low") == []
        await kube.patch(
            "v1",
            "PersistentVolumeClaim",
            claim["metadata"]["name"],
            lab.namespace,
            {"spec": {"resources": {"requests": {"storage": "160Mi"}}}},
        )
        [low] = await lab.wait_published("pool.capacity.low")
        assert (low["backend"], low["pool"], low["threshold_percent"]) == ("fast", "gold", 25.0)
        assert (low["free_bytes"], low["total_bytes"]) == (40 * MiB, 200 * MiB)


async def test_capacity_metrics_survive_a_bus_that_does_not_answer() -> None:
    """NATS down for longer than a tick: the tick is skipped (the bus raises TimeoutError,
    as nats-py does), the loop goes on and reports again once the bus answers."""
    from types import SimpleNamespace

    from services.provisioner.capacity import report_capacity

    calls = 0

    async def read_all() -> list[object]:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise TimeoutError("nats: timeout")
        return []

    env = SimpleNamespace(backends={}, volumes=SimpleNamespace(read_all=read_all))
    loop = asyncio.create_task(report_capacity(env, every=0.01))  # type: ignore[arg-type]
    try:
        for _ in range(200):
            if calls >= 4:
                break
            await asyncio.sleep(0.01)
        assert calls >= 4 and not loop.done()
    finally:
        loop.cancel()
