"""Execution hooks around backups and restores, through the whole embedded stack: pre- and
post-backup hooks run in the app's pod, a failing pre-backup hook stops the backup before
anything is copied, a failing post-backup hook leaves a whole but PartiallyFailed backup,
and post-restore hooks run in the restored copy's pod in the other cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.protection import snapshot_kit as kit
from vessel.bus.nats_port import Bus
from vessel.contracts import subjects
from vessel.contracts.commands import CreateBackup, CreateRestore
from vessel.contracts.hooks import ExecHook
from vessel.contracts.operations import Operation
from vessel_dev.rig.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

stack = pytest.fixture(scope="module")(kit.running_stack)
bus = pytest.fixture(scope="module")(kit.connected_bus)
COPY = "hooked-copy"


@pytest.fixture(scope="module")
async def app(stack: Stack, bus: Bus) -> kit.App:
    deployed = await kit.deploy_app(stack, bus)
    await kit.running_pod(kit.cluster(stack, "cluster-a"))
    return deployed


@pytest.fixture
async def hooks(bus: Bus) -> AsyncIterator[list[ExecHook]]:
    """Hooks put here are stored for the test and removed after it."""
    put: list[ExecHook] = []
    yield put
    store = await bus.kv("hooks")
    for key in await store.keys():
        await store.delete(key)


async def define(bus: Bus, hooks: list[ExecHook], *defined: ExecHook) -> None:
    store = await bus.kv("hooks")
    for hook in defined:
        await store.put(f"{kit.APP_ID}.{hook.id}", hook.model_dump_json().encode())
        hooks.append(hook)


def ran(op: Operation) -> list[tuple[str, str]]:
    return [(i.name, i.state) for i in op.items if i.kind == "hook"]


async def back_up(bus: Bus, op_id: str) -> Operation:
    await bus.publish(
        subjects.CREATE_BACKUP,
        CreateBackup(operation_id=op_id, app_id=kit.APP_ID, bucket="default"),
    )
    return await kit.finished(bus, op_id, within=90)


async def test_backup_and_restore_hooks_run_in_the_apps_pods(
    stack: Stack, bus: Bus, app: kit.App, hooks: list[ExecHook]
) -> None:
    await define(
        bus,
        hooks,
        kit.hook("quiesce", "pre-backup", ["sh", "-c", "echo quiesced > state"]),
        kit.hook("resume", "post-backup", ["sh", "-c", "grep -q quiesced state"]),
        kit.hook("warm", "post-restore", ["sh", "-c", "echo warmed"]),
    )
    op = await back_up(bus, "backup-hooked")
    assert op.phase == "Completed", op.message
    assert ran(op) == [
        (f"quiesce@{kit.POD}/db", "Completed"),
        (f"resume@{kit.POD}/db", "Completed"),
    ]

    b = kit.cluster(stack, "cluster-b")  # the copy's pod, where post-restore hooks run
    await b.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": COPY}})
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": kit.POD, "namespace": COPY, "labels": {"app": kit.APP}},
        "spec": {"containers": [{"name": "db", "image": "db:1"}]},
    }
    await b.create(pod)
    await b.patch("v1", "Pod", kit.POD, COPY, {"status": {"phase": "Running"}}, status=True)
    await bus.publish(
        subjects.CREATE_RESTORE,
        CreateRestore(
            operation_id="restore-hooked",
            backup_id="backup-hooked",
            bucket="default",
            target_cluster="cluster-b",
            namespace_mapping={kit.NAMESPACE: COPY},
        ),
    )
    restored = await kit.finished(bus, "restore-hooked", within=90)
    assert restored.phase == "Completed", restored.message
    assert ran(restored) == [(f"warm@{kit.POD}/db", "Completed")], restored.items


async def test_a_failing_pre_backup_hook_stops_the_backup_before_any_copy(
    stack: Stack, bus: Bus, app: kit.App, hooks: list[ExecHook]
) -> None:
    await define(bus, hooks, kit.hook("lock", "pre-backup", ["sh", "-c", "exit 4"]))
    op = await back_up(bus, "backup-refused")
    assert op.phase == "Failed" and "pre-backup hook failed" in op.message
    assert not op.volumes
    assert not stack.store().exists("backups/backup-refused/backup.json")


async def test_a_failing_post_backup_hook_leaves_a_whole_partially_failed_backup(
    stack: Stack, bus: Bus, app: kit.App, hooks: list[ExecHook]
) -> None:
    await define(bus, hooks, kit.hook("resume", "post-backup", ["sh", "-c", "exit 5"]))
    op = await back_up(bus, "backup-unresumed")
    assert op.phase == "PartiallyFailed" and "post-backup hook failed" in op.message
    assert stack.store().exists("backups/backup-unresumed/backup.json")
