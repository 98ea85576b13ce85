"""Backends added, updated and removed at runtime by command, against a running provisioner
(emulated API, real NATS, real dir and btrfs backends): validated with errors naming the
problem, applied without a restart, kept in KV `backends`, announced once per operation."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.provisioner.lab import Lab, ServedBackendAdmin, running_lab, wait_for
from vessel.bus.nats_port import Bus, KeyValue
from vessel.config import BackendConfig, ConfigError
from vessel.contracts import subjects
from vessel.contracts.commands import PutBackend, RemoveBackend
from vessel.kube.client import KubeCluster
from vessel.stopping import cancel_and_wait

MiB = 1 << 20


@dataclass
class Admin:
    lab: Lab
    admin: ServedBackendAdmin
    kv: KeyValue
    tmp: Path
    task: asyncio.Task[None]

    def dir_config(self, name: str, **fields: Any) -> dict[str, Any]:
        path = self.tmp / name
        path.mkdir(exist_ok=True)
        return {"name": name, "type": "dir", "path": str(path), **fields}

    async def send(self, verb: str, op: str, **payload: Any) -> None:
        message = {
            "add": subjects.ADD_BACKEND,
            "update": subjects.UPDATE_BACKEND,
            "remove": subjects.REMOVE_BACKEND,
        }[verb]
        body = (RemoveBackend if verb == "remove" else PutBackend)(operation_id=op, **payload)
        await self.lab.bus.publish(message, body, cluster=self.lab.cluster)

    async def outcome(self, op: str) -> tuple[str, dict[str, Any]]:
        """The event answering operation `op`: (type suffix, payload)."""

        async def check() -> tuple[str, dict[str, Any]] | None:
            for event in self.lab.events:
                if event.data.get("operation_id") == op:
                    return event.type.removeprefix("io.vessel.provisioner.")[:-3], event.data
            return None

        return await wait_for(check, f"answer to {op}")


def op() -> str:
    return f"op-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def admin(kube: KubeCluster, bus: Bus, tmp_path: Path) -> AsyncIterator[Admin]:
    async with running_lab(kube, bus, []) as lab:
        provisioner = await lab.start()
        kv = await bus.kv("backends")
        backend_admin = ServedBackendAdmin(provisioner.env, bus, kv, [])
        await backend_admin.load()
        task = asyncio.create_task(backend_admin.serve(provisioner.ready))
        try:
            yield Admin(lab, backend_admin, kv, tmp_path, task)
        finally:
            await cancel_and_wait([task])


async def test_an_added_backend_serves_claims_without_a_restart(admin: Admin) -> None:
    lab, add = admin.lab, op()
    await admin.send("add", add, backend=admin.dir_config("extra", capacity_bytes=512 * MiB))
    kind, added = await admin.outcome(add)
    assert kind == "backend.added"
    assert added == {
        "cluster": lab.cluster,
        "operation_id": add,
        "backend": "extra",
        "type": "dir",
        "path": str(admin.tmp / "extra"),
        "pools": ["default"],
    }
    sc = await lab.storage_class("extra", {"storagePools": "extra:default"})
    await lab.claim("data", sc, "32Mi")
    _, pv = await lab.bound("data")
    assert pv["metadata"]["labels"]["vessel.io/backend"] == "extra"
    assert (admin.tmp / "extra" / pv["metadata"]["name"]).is_dir()
    entry = await admin.kv.get(f"{lab.cluster}.extra")
    assert entry is not None and json.loads(entry.value)["operation_id"] == add

    # Redelivered (a new message, same operation): nothing changes, no second event.
    await admin.send("add", add, backend=admin.dir_config("extra", capacity_bytes=512 * MiB))
    await admin.admin.add(PutBackend(operation_id=add, backend=admin.dir_config("extra")))
    await asyncio.sleep(1.0)
    assert len(lab.published("backend.added")) == 1
    assert lab.published("backend.rejected") == []


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"pools": [{"name": "p", "attributes": {"colour": "red"}}]}, "unknown pool attribute"),
        ({"speed": "fast"}, "speed: Extra inputs are not permitted"),
        ({"path": "/nonexistent/vessel"}, "/nonexistent/vessel is not a directory"),
        ({"type": "btrfs"}, "is not a mounted btrfs filesystem"),
        ({"capacity_bytes": -1}, "capacity_bytes: Input should be greater than 0"),
        ({"pools": [{"name": "p", "attributes": {"provisioningType": "thick"}}]}, "thick"),
    ],
)
async def test_bad_backends_are_rejected_naming_the_problem(
    admin: Admin, fields: dict[str, Any], error: str
) -> None:
    add = op()
    await admin.send("add", add, backend={**admin.dir_config("bad"), **fields})
    kind, rejected = await admin.outcome(add)
    assert kind == "backend.rejected"
    assert rejected["action"] == "add" and rejected["backend"] == "bad"
    assert error in rejected["error"]
    assert "bad" not in admin.lab.provisioner.env.backends  # type: ignore[union-attr]
    assert await admin.kv.get(f"{admin.lab.cluster}.bad") is None


async def test_duplicates_and_unknown_names_are_rejected(admin: Admin) -> None:
    first, again, update, remove = op(), op(), op(), op()
    await admin.send("add", first, backend=admin.dir_config("one"))
    assert (await admin.outcome(first))[0] == "backend.added"
    await admin.send("add", again, backend=admin.dir_config("one"))
    kind, rejected = await admin.outcome(again)
    assert kind == "backend.rejected" and "duplicate backend name one" in rejected["error"]
    await admin.send("update", update, backend=admin.dir_config("two"))
    kind, rejected = await admin.outcome(update)
    assert kind == "backend.rejected" and "has no backend two (known: one)" in rejected["error"]
    await admin.send("remove", remove, name="two")
    assert (await admin.outcome(remove))[1]["action"] == "remove"


async def test_removal_is_refused_while_volumes_remain(admin: Admin) -> None:
    lab, add = admin.lab, op()
    await admin.send("add", add, backend=admin.dir_config("busy"))
    await admin.outcome(add)
    sc = await lab.storage_class("busy")
    await lab.claim("a", sc, "16Mi")
    await lab.claim("b", sc, "16Mi")
    _, pv_a = await lab.bound("a")
    _, pv_b = await lab.bound("b")
    refused = op()
    await admin.send("remove", refused, name="busy")
    kind, rejected = await admin.outcome(refused)
    assert kind == "backend.rejected"
    assert "backend busy still holds 2 volumes" in rejected["error"]
    moved = op()
    await admin.send("update", moved, backend=admin.dir_config("elsewhere") | {"name": "busy"})
    kind, rejected = await admin.outcome(moved)
    assert kind == "backend.rejected" and "type and path cannot change" in rejected["error"]

    dropped = op()
    await admin.send("update", dropped, backend=admin.dir_config("busy", pools=[{"name": "new"}]))
    kind, rejected = await admin.outcome(dropped)
    assert kind == "backend.rejected"
    assert "pool default holds 2 volumes and cannot be dropped" in rejected["error"]
    grown = op()
    await admin.send("update", grown, backend=admin.dir_config("busy", capacity_bytes=1 << 30))
    kind, _ = await admin.outcome(grown)
    assert kind == "backend.updated"  # same path and pools: allowed with volumes in place

    for name, pv in (("a", pv_a), ("b", pv_b)):
        await lab.delete_claim(name)
        await wait_for(lambda pv=pv: _record_gone(lab, pv["metadata"]["name"]), "record gone")
    removal = op()
    await admin.send("remove", removal, name="busy")
    kind, removed = await admin.outcome(removal)
    assert kind == "backend.removed" and removed["backend"] == "busy"
    assert removed["type"] is None and removed["pools"] == []
    env = lab.provisioner.env  # type: ignore[union-attr]
    assert "busy" not in env.backends and env.pools_of("busy") == []
    await admin.admin.remove(RemoveBackend(operation_id=removal, name="busy"))  # redelivered
    await asyncio.sleep(0.5)
    assert len(lab.published("backend.removed")) == 1
    await lab.claim("c", sc, "16Mi")
    reason = await lab.wait_reason("c", "NoMatchingPool")
    assert "no storage pool is configured" in reason


async def _record_gone(lab: Lab, volume_id: str) -> bool:
    return await lab.record(volume_id) is None


async def test_updates_change_pools_and_everything_survives_a_restart(
    admin: Admin, tmp_path: Path
) -> None:
    lab = admin.lab
    configured = [
        BackendConfig(name="base", type="dir", path=Path(admin.dir_config("base")["path"])),
        BackendConfig(name="gone", type="dir", path=Path(admin.dir_config("gone")["path"])),
    ]
    admin.admin.configured = configured
    await admin.admin.load()
    env = lab.provisioner.env  # type: ignore[union-attr]
    assert sorted(env.backends) == ["base", "gone"]
    update, remove, add = op(), op(), op()
    pools = [{"name": "gold", "labels": {"tier": "gold"}, "capacity_bytes": 64 * MiB}]
    await admin.send("update", update, backend=admin.dir_config("base", pools=pools))
    kind, updated = await admin.outcome(update)
    assert kind == "backend.updated" and updated["pools"] == ["gold"]
    await admin.send("remove", remove, name="gone")
    assert (await admin.outcome(remove))[0] == "backend.removed"
    await admin.send("add", add, backend=admin.dir_config("more"))
    assert (await admin.outcome(add))[0] == "backend.added"

    # A new provisioner process: settings first, then what KV says.
    fresh = ServedBackendAdmin(env, lab.bus, admin.kv, configured)
    env.backends.clear()
    env.pools.clear()
    await fresh.load()
    assert sorted(env.backends) == ["base", "more"]
    assert [(p.backend, p.name, p.capacity_bytes) for p in env.pools_of("base")] == [
        ("base", "gold", 64 * MiB)
    ]
    sc = await lab.storage_class("gold", {"selector": "tier=gold"})
    await lab.claim("data", sc, "16Mi")
    _, pv = await lab.bound("data")
    assert pv["metadata"]["annotations"]["vessel.io/pool"] == "gold"


async def test_a_configured_backend_that_cannot_be_built_stops_the_service(
    admin: Admin, tmp_path: Path
) -> None:
    assert admin.lab.provisioner is not None
    env, bus = admin.lab.provisioner.env, admin.lab.bus
    broken = BackendConfig(name="broken", type="btrfs", path=Path(admin.dir_config("x")["path"]))
    with pytest.raises(ConfigError, match=r"backend broken: .* is not a mounted btrfs"):
        await ServedBackendAdmin(env, bus, admin.kv, [broken]).load()
    with pytest.raises(ConfigError, match="duplicate backend name broken"):
        await ServedBackendAdmin(env, bus, admin.kv, [broken, broken]).load()


async def test_a_btrfs_backend_added_at_runtime_enforces_sizes(
    admin: Admin, btrfs_root: Path
) -> None:
    lab, add = admin.lab, op()
    config = {"name": "fast", "type": "btrfs", "path": str(btrfs_root), "capacity_bytes": 256 * MiB}
    await admin.send("add", add, backend=config)
    kind, added = await admin.outcome(add)
    assert kind == "backend.added" and added["type"] == "btrfs"
    sc = await lab.storage_class("fast", {"backendType": "btrfs"})
    await lab.claim("data", sc, "8Mi")
    _, pv = await lab.bound("data")
    path = Path(pv["spec"]["hostPath"]["path"])
    assert path.parent == btrfs_root
    with pytest.raises(OSError), (path / "big").open("wb") as out:
        for _ in range(16):
            out.write(b"\0" * MiB)
            out.flush()
