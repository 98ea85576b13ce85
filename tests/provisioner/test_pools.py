"""Claims land in the pool their StorageClass matches, with the most free space; a claim no
pool can take gets an Event naming the unmet requirement."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.provisioner.adapters.base import StorageBackend
from services.provisioner.adapters.dirfs import DirBackend
from services.provisioner.pools import Pool, build_pools
from tests.provisioner.lab import Lab, running_lab
from vessel.bus.nats_port import Bus
from vessel.config import BackendConfig
from vessel.kube.client import KubeCluster

MiB = 1 << 20


@pytest.fixture
async def pooled(kube: KubeCluster, bus: Bus, tmp_path: Path) -> AsyncIterator[Lab]:
    local = BackendConfig.model_validate(
        {
            "name": "local",
            "type": "dir",
            "path": str(tmp_path / "local"),
            "pools": [
                {
                    "name": "ssd",
                    "attributes": {"media": "ssd"},
                    "labels": {"tier": "gold"},
                    "capacity_bytes": 256 * MiB,
                },
                {
                    "name": "hdd",
                    "attributes": {"media": "hdd"},
                    "labels": {"tier": "bronze"},
                    "capacity_bytes": 512 * MiB,
                },
            ],
        }
    )
    other = BackendConfig(name="other", type="dir", path=tmp_path / "other", capacity_bytes=1 << 30)
    backends: list[StorageBackend] = []
    pools: list[Pool] = []
    for config in (local, other):
        config.path.mkdir()
        backend = DirBackend(config.name, config.path, config.capacity_bytes)
        backends.append(backend)
        pools += build_pools(config, backend.type, backend.capabilities)
    async with running_lab(kube, bus, backends) as lab:
        await lab.start(pools=pools)
        yield lab


async def placed(lab: Lab, name: str) -> str:
    _, pv = await lab.bound(name)
    record = await lab.record(pv["metadata"]["name"])
    assert record is not None
    assert pv["metadata"]["annotations"]["vessel.io/pool"] == record["pool"]
    return f"{record['backend']}:{record['pool']}"


async def test_required_attributes_pick_the_pool(pooled: Lab) -> None:
    ssd = await pooled.storage_class("ssd", {"media": "ssd"})
    await pooled.claim("on-ssd", ssd)
    assert await placed(pooled, "on-ssd") == "local:ssd"


async def test_a_label_selector_picks_the_pool(pooled: Lab) -> None:
    bronze = await pooled.storage_class("bronze", {"selector": "tier=bronze"})
    await pooled.claim("on-bronze", bronze)
    assert await placed(pooled, "on-bronze") == "local:hdd"


async def test_storage_pools_pick_the_backend(pooled: Lab) -> None:
    elsewhere = await pooled.storage_class("other", {"storagePools": "other:.*"})
    await pooled.claim("elsewhere", elsewhere)
    assert await placed(pooled, "elsewhere") == "other:default"


async def test_placement_follows_free_capacity(pooled: Lab) -> None:
    anywhere = await pooled.storage_class("any")
    await pooled.claim("first", anywhere, "64Mi")
    assert await placed(pooled, "first") == "other:default"  # 1 GiB free beats 512 and 256 MiB
    local = await pooled.storage_class("local", {"storagePools": "local:ssd,hdd"})
    await pooled.claim("big", local, "300Mi")
    assert await placed(pooled, "big") == "local:hdd"  # 512 MiB free beats 256
    await pooled.claim("next", local, "100Mi")
    assert await placed(pooled, "next") == "local:ssd"  # now 256 MiB free beats 212


async def test_nothing_matching_is_an_event_naming_the_requirement(pooled: Lab) -> None:
    nvme = await pooled.storage_class("nvme", {"media": "nvme", "snapshots": "true"})
    await pooled.claim("nowhere", nvme)
    message = await pooled.wait_reason("nowhere", "NoMatchingPool")
    assert nvme["metadata"]["name"] in message
    assert "media=nvme" in message and "ssd on local:ssd" in message
    [failed] = await pooled.wait_published("volume.failed")
    assert failed["reason"] == "NoMatchingPool" and failed["claim"] == "nowhere"
    claim = await pooled.get_claim("nowhere")
    assert claim is not None and claim["status"]["phase"] == "Pending"


async def test_bad_class_parameters_are_an_event(pooled: Lab) -> None:
    bad = await pooled.storage_class("bad", {"speed": "ludicrous"})
    await pooled.claim("bad-params", bad)
    message = await pooled.wait_reason("bad-params", "InvalidParameters")
    assert "unknown parameter speed" in message


async def test_a_full_pool_refuses_claims_and_growth(pooled: Lab) -> None:
    ssd = await pooled.storage_class(
        "ssd-only", {"storagePools": "local:ssd"}, allowVolumeExpansion=True
    )
    await pooled.claim("too-big", ssd, "300Mi")
    message = await pooled.wait_reason("too-big", "ProvisioningFailed")
    assert "no matching pool can hold 314572800 bytes" in message and "local:ssd" in message
    await pooled.claim("fits", ssd, "200Mi")
    await pooled.bound("fits")
    patch = {"spec": {"resources": {"requests": {"storage": "300Mi"}}}}
    await pooled.kube.patch("v1", "PersistentVolumeClaim", "fits", "default", patch)
    message = await pooled.wait_reason("fits", "VolumeResizeFailed")
    assert "pool local:ssd" in message
