"""The bucket is untrusted, end to end on the running services: a backed-up Secret shows
nowhere outside the cluster (bucket, KV, events, commands, dead letters, logs), and a
restore of a backup whose documents were changed in the bucket is refused before
anything is written to the target cluster."""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.request
from pathlib import Path
from typing import Any

import nats
import pytest

from services.protection.bucket_catalog import read_backup
from tests.protection import snapshot_kit as kit
from vessel.bus.nats_port import Bus
from vessel.contracts import subjects
from vessel.contracts.commands import CreateBackup, CreateRestore
from vessel.contracts.events import AppRecord
from vessel.contracts.state import CATALOG_HEAD_KEY
from vessel_dev.rig.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

stack = pytest.fixture(scope="module")(kit.running_stack)
bus = pytest.fixture(scope="module")(kit.connected_bus)
SECRET_VALUE = "s3cr3t-value-never-outside-the-cluster"


HEADS: dict[str, bytes] = {}
"""The catalog head as it was after each backup."""


@pytest.fixture(scope="module")
async def backups(stack: Stack, bus: Bus) -> tuple[str, str]:
    """Two completed backups of the app, which holds a Secret."""
    await kit.deploy_app(stack, bus)
    a = kit.cluster(stack, "cluster-a")
    await a.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "db-password",
                "namespace": kit.NAMESPACE,
                "labels": {"app": kit.APP},
            },
            "data": {"password": base64.b64encode(SECRET_VALUE.encode()).decode()},
        }
    )
    inventory = await bus.kv("inventory")

    async def secret_in_app() -> bool:
        entry = await inventory.get(f"apps.{kit.APP_ID}")
        app = AppRecord.model_validate_json(entry.value) if entry else None
        return app is not None and any(r.kind == "Secret" for r in app.resources)

    await kit.until(secret_in_app, "the Secret grouped into the app")
    ids = ("sealed-1", "sealed-2")
    for backup_id in ids:
        await bus.publish(
            subjects.CREATE_BACKUP,
            CreateBackup(operation_id=backup_id, app_id=kit.APP_ID, bucket="default"),
        )
        done = await kit.finished(bus, backup_id)
        assert done.phase == "Completed", done.message
        HEADS[backup_id] = stack.store().get_bytes(CATALOG_HEAD_KEY)
    return ids


async def stream_messages(stack: Stack) -> list[bytes]:
    """Every message of every JetStream stream: KV buckets, events, commands, dead letters."""

    def jsz() -> dict[str, Any]:
        with urllib.request.urlopen(f"{stack.nats.monitor_url}/jsz?streams=true") as reply:
            return json.load(reply)  # type: ignore[no-any-return]

    report = await asyncio.to_thread(jsz)
    names = [s["name"] for d in report["account_details"] for s in d["stream_detail"]]
    assert "VESSEL_EVENTS" in names and any(n.startswith("KV_") for n in names), names
    nc = await nats.connect(stack.nats.url)
    js = nc.jetstream()
    found = []
    try:
        for name in names:
            state = (await js.stream_info(name)).state
            if not state.messages:
                continue
            for seq in range(state.first_seq, state.last_seq + 1):
                try:
                    msg = await js.get_msg(name, seq)
                except nats.js.errors.NotFoundError:
                    continue  # deleted (work queues, KV history)
                found.append(msg.data or b"")
    finally:
        await nc.close()
    return found


async def test_a_secret_is_never_readable_outside_the_cluster(
    stack: Stack, bus: Bus, backups: tuple[str, str]
) -> None:
    _, objects = read_backup(stack.sealed(), backups[0])
    (secret,) = [o for o in objects if o["kind"] == "Secret"]
    assert base64.b64decode(secret["data"]["password"]).decode() == SECRET_VALUE
    needles = [SECRET_VALUE.encode(), base64.b64encode(SECRET_VALUE.encode())]

    store = stack.store()
    keys = store.list("")
    assert f"backups/{backups[0]}/resources.sealed" in keys
    assert not [k for k in keys if any(n in store.get_bytes(k) for n in needles)]
    messages = await stream_messages(stack)
    assert len(messages) > 20
    assert not [m[:200] for m in messages if any(n in m for n in needles)]
    logs = {p.name: p.read_bytes() for p in Path(stack.workdir).glob("*.log")}  # noqa: ASYNC240
    assert "protection.log" in logs
    assert not [name for name, text in logs.items() if any(n in text for n in needles)]


def _flip_last_byte(stack: Stack, key: str) -> None:
    store = stack.store()
    data = bytearray(store.get_bytes(key))
    data[-1] ^= 1
    store.put_bytes(key, bytes(data))


def _swap(stack: Stack, source: str, target: str) -> None:
    store = stack.store()
    store.put_bytes(target, store.get_bytes(source))


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("modified-resources", "resources.sealed: not the document its backup record names"),
        ("swapped-record", "backup.sealed: authentication failed"),
    ],
)
async def test_a_tampered_backup_is_refused_before_anything_is_written(
    stack: Stack, bus: Bus, backups: tuple[str, str], case: str, expected: str
) -> None:
    victim, other = backups
    saved = {k: stack.store().get_bytes(k) for k in stack.store().list(f"backups/{victim}/")}
    if case == "modified-resources":
        _flip_last_byte(stack, f"backups/{victim}/resources.sealed")
    else:
        _swap(stack, f"backups/{other}/backup.sealed", f"backups/{victim}/backup.sealed")
    try:
        message = await restore_refused(stack, bus, victim, f"tampered-{case}")
        assert expected in message and f"backups/{victim}/" in message
    finally:
        for key, data in saved.items():
            stack.store().put_bytes(key, data)


async def restore_refused(stack: Stack, bus: Bus, backup_id: str, case: str) -> str:
    """Restore into a new namespace of cluster B; the failure message, once nothing was
    written there."""
    target = f"refused-{case}"
    await bus.publish(
        subjects.CREATE_RESTORE,
        CreateRestore(
            operation_id=f"restore-{case}",
            backup_id=backup_id,
            bucket="default",
            target_cluster="cluster-b",
            namespace_mapping={kit.NAMESPACE: target},
        ),
    )
    done = await kit.finished(bus, f"restore-{case}")
    assert done.phase == "Failed" and "nothing written" in done.message, done.message
    b = kit.cluster(stack, "cluster-b")
    assert await b.get("v1", "Namespace", target) is None
    for kind in ("Secret", "ConfigMap", "PersistentVolumeClaim"):
        found, _ = await b.list("v1", kind, namespace=target)
        assert found == [], kind
    return done.message


async def test_a_rolled_back_catalog_is_refused(
    stack: Stack, bus: Bus, backups: tuple[str, str]
) -> None:
    """The bucket as it was after the first backup (its head put back): protection saw
    a newer head, so it refuses to restore from it."""
    store = stack.store()
    current = store.get_bytes(CATALOG_HEAD_KEY)
    store.put_bytes(CATALOG_HEAD_KEY, HEADS[backups[0]])
    try:
        message = await restore_refused(stack, bus, backups[0], "rolled-back")
        assert "catalog/head.sealed: catalog head 1 is older than head 2" in message
        store.delete(CATALOG_HEAD_KEY)
        message = await restore_refused(stack, bus, backups[0], "head-deleted")
        assert "missing, though this Vessel saw catalog head 2" in message
    finally:
        store.put_bytes(CATALOG_HEAD_KEY, current)
