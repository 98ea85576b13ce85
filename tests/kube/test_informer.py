"""The kube port and informer against the emulated API server over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vessel.kube import errors
from vessel.kube.client import KubeCluster
from vessel.kube.informer import Informer
from vessel.stopping import cancel_and_wait
from vessel_dev.emulators.kube import KubeEmulator

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def small_history(tmp_path: Path) -> Iterator[KubeCluster]:
    emulator = KubeEmulator(history=20)
    emulator.start()
    emulator.write_kubeconfig(tmp_path / "kubeconfig")
    yield KubeCluster(tmp_path / "kubeconfig", "small")
    emulator.stop()


def config_map(name: str, value: str = "1") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": {"v": value},
    }


async def test_port_errors_are_classified(kube: KubeCluster) -> None:
    await kube.create(config_map("one"))
    with pytest.raises(errors.AlreadyExists):
        await kube.create(config_map("one"))
    with pytest.raises(errors.NotFound):
        await kube.create(
            {**config_map("two"), "metadata": {"name": "two", "namespace": "nowhere"}}
        )
    assert await kube.get("v1", "ConfigMap", "missing", "default") is None
    patched = await kube.patch("v1", "ConfigMap", "one", "default", {"data": {"v": "2"}})
    assert patched["data"] == {"v": "2"}
    await kube.delete("v1", "ConfigMap", "one", "default")
    await kube.delete("v1", "ConfigMap", "one", "default")  # idempotent
    assert await kube.get("v1", "ConfigMap", "one", "default") is None


async def test_unreachable_server_is_classified(tmp_path: Path) -> None:
    emulator = KubeEmulator()
    emulator.start()
    emulator.write_kubeconfig(tmp_path / "kubeconfig")
    emulator.stop()
    with pytest.raises(errors.Unreachable, match="unreachable"):
        await KubeCluster(tmp_path / "kubeconfig", "gone").list("v1", "ConfigMap")


async def test_informer_sees_changes_in_order(kube: KubeCluster) -> None:
    await kube.create(config_map("before"))
    seen: list[tuple[str, str]] = []

    async def record(type_: str, obj: dict[str, Any]) -> None:
        seen.append((type_, obj["metadata"]["name"]))

    informer = Informer(kube, "v1", "ConfigMap", namespace="default", watch_timeout=2)
    task = asyncio.create_task(informer.run(record))
    await asyncio.wait_for(informer.synced.wait(), 10)
    await kube.create(config_map("after"))
    await kube.patch("v1", "ConfigMap", "before", "default", {"data": {"v": "2"}})
    await kube.delete("v1", "ConfigMap", "after", "default")
    for _ in range(100):
        if len(seen) >= 4:
            break
        await asyncio.sleep(0.05)
    await cancel_and_wait([task])
    assert seen == [
        ("ADDED", "before"),
        ("ADDED", "after"),
        ("MODIFIED", "before"),
        ("DELETED", "after"),
    ]
    assert set(informer.cache) == {"default/before"}


async def test_informer_relists_after_410_and_reports_the_difference(
    small_history: KubeCluster,
    caplog: pytest.LogCaptureFixture,
) -> None:
    kube = small_history
    await kube.create(config_map("stays"))
    await kube.create(config_map("goes"))
    seen: list[tuple[str, str]] = []

    async def record(type_: str, obj: dict[str, Any]) -> None:
        seen.append((type_, obj["metadata"]["name"]))

    caplog.set_level("INFO", logger="vessel.kube.informer")
    informer = Informer(kube, "v1", "ConfigMap", namespace="default", watch_timeout=1)
    first = asyncio.create_task(informer.run(record))
    await asyncio.wait_for(informer.synced.wait(), 10)
    await cancel_and_wait([first])
    stale = informer.resource_version
    # While nobody watches, more changes than the server's history holds.
    await kube.delete("v1", "ConfigMap", "goes", "default")
    await kube.create(config_map("new"))
    for i in range(30):
        await kube.patch("v1", "ConfigMap", "stays", "default", {"data": {"v": str(i)}})
    seen.clear()
    with pytest.raises(errors.Gone):
        async for _ in kube.watch("v1", "ConfigMap", stale, namespace="default"):
            pass
    second = asyncio.create_task(informer.run(record))  # resumes from `stale`: 410, relist
    for _ in range(100):
        if len(seen) >= 3:
            break
        await asyncio.sleep(0.05)
    await cancel_and_wait([second])
    assert f"watch expired at {stale}; relisting" in caplog.text
    assert sorted(seen) == [("ADDED", "new"), ("DELETED", "goes"), ("MODIFIED", "stays")]
    assert set(informer.cache) == {"default/stays", "default/new"}
