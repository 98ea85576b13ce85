"""`vessel snapshot|backup|restore|schedule|bucket` against a real gateway over TLS (real
NATS, a real S3 bucket), and the rendering of live progress."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.gateway.harness import Pki, unique
from tests.gateway.protection_harness import (
    Names,
    World,
    last_command,
    open_world,
)
from vessel.api.v1 import protection_pb2 as ppb
from vessel.api.v1 import vessel_pb2 as pb
from vessel.contracts import subjects
from vessel.contracts.commands import DefineApp, UndefineApp
from vessel.contracts.events import TransferProgress
from vessel.contracts.operations import Operation, Phase, VolumeWork
from vessel.contracts.protection import PutSchedule
from vessel_cli.progress import CLEAR_LINE, ProgressView, duration, progress_line, size
from vessel_dev.rig.processes import NatsServer, S3Server

N = Names()
pytestmark = pytest.mark.usefixtures("no_client_env")


@pytest.fixture(scope="module")
async def world(nats_server: NatsServer, s3_server: S3Server, pki: Pki) -> AsyncIterator[World]:
    async with open_world(N, "cli-protection", nats_server, s3_server, pki, preflight=True) as w:
        yield w


# ---- rendering ----


def _progress(**fields: Any) -> ppb.TransferProgress:
    base: dict[str, Any] = {
        "operation_id": "backup-1",
        "transfer_id": "t-1",
        "namespace": "shop",
        "claim": "data",
        "direction": "backup",
        "files": 120,
        "bytes": 12 << 20,
        "bytes_per_second": 4 << 20,
        "total_bytes": 40 << 20,
        "eta_seconds": 7.0,
    }
    base.update(fields)
    return ppb.TransferProgress(**base)


def test_progress_lines_say_files_bytes_rate_and_eta() -> None:
    assert size(512) == "512 B" and size(1536) == "1.5 KiB" and size(3 << 30) == "3.0 GiB"
    assert duration(3725) == "1:02:05" and duration(-3) == "0:00:00"
    assert progress_line(_progress()) == (
        "shop/data  backup  120 files  12.0 MiB / 40.0 MiB (30%)  4.0 MiB/s  ETA 0:00:07"
    )
    assert progress_line(_progress(total_files=400)).startswith("shop/data  backup  120/400 files")
    unknown = ppb.TransferProgress(
        transfer_id="t-9", direction="restore", files=1, bytes=10, bytes_per_second=0
    )
    assert progress_line(unknown) == "t-9  restore  1 files  10 B  0 B/s"  # no total, no ETA


def _updates() -> list[ppb.OperationUpdate]:
    running = pb.Operation(id="backup-1", kind="backup", phase="InProgress")
    done = pb.Operation(id="backup-1", kind="backup", phase="Completed", message="2 volumes")
    return [
        ppb.OperationUpdate(operation=running),
        ppb.OperationUpdate(progress=_progress(files=1)),
        ppb.OperationUpdate(progress=_progress(transfer_id="t-2", claim="logs", files=5)),
        ppb.OperationUpdate(progress=_progress(files=2)),
        ppb.OperationUpdate(operation=running),  # unchanged phase: not repeated
        ppb.OperationUpdate(operation=done),
    ]


def test_a_pipe_gets_one_plain_line_per_update() -> None:
    out = io.StringIO()
    last = ProgressView(out, tty=False).show(_updates())
    assert last is not None and last.phase == "Completed"
    lines = out.getvalue().splitlines()
    assert lines[0] == "backup backup-1: InProgress"
    assert [line.split("  ")[0] for line in lines[1:4]] == ["shop/data", "shop/logs", "shop/data"]
    assert "2 files" in lines[3] and "1 files" in lines[1]
    assert lines[4] == "backup backup-1: Completed - 2 volumes" and len(lines) == 5
    assert "\x1b" not in out.getvalue()


def test_a_terminal_gets_one_line_per_volume_redrawn_in_place() -> None:
    out = io.StringIO()
    ProgressView(out, tty=True).show(_updates())
    text = out.getvalue()
    assert "\x1b[1F" in text and "\x1b[2F" in text  # back up over 1, then 2 volume lines
    screen = _replay(text)
    assert screen[0] == "backup backup-1: InProgress"
    assert screen[1] == "backup backup-1: Completed - 2 volumes"
    assert screen[2].startswith("shop/data  backup  2 files")  # redrawn, not appended
    assert screen[3].startswith("shop/logs  backup  5 files") and len(screen) == 4


def _replay(text: str) -> list[str]:
    """What a terminal shows after `text`: lines, cursor-up-and-home, clear-line."""
    screen: list[str] = []
    row = 0
    i = 0
    while i < len(text):
        if text.startswith("\x1b[", i):
            end = i + 2
            while not text[end].isalpha():
                end += 1
            code, arg = text[end], text[i + 2 : end]
            if code == "F":
                row -= int(arg)
            elif code == "K" and row < len(screen):
                screen[row] = ""
            i = end + 1
            continue
        newline = text.find("\n", i)
        chunk = text[i:newline].replace(CLEAR_LINE, "")
        while len(screen) <= row:
            screen.append("")
        screen[row] = chunk
        row += 1
        i = newline + 1
    return [line for line in screen if line]


# ---- verbs against the gateway ----


async def test_buckets_backups_and_snapshots_in_every_format(run: Any) -> None:
    code, out, err = await run("bucket", "list")
    assert code == 0, err
    assert out.splitlines()[0].split() == ["NAME", "ENDPOINT", "BUCKET", "REPOSITORY", "SECURE"]
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["default", "dr"]
    code, out, err = await run("-o", "json", "backup", "list", "--bucket", "default")
    assert code == 0, err
    ids = [b["id"] for b in json.loads(out) if N.run in b["id"]]
    assert ids == sorted([N.backup(i) for i in range(5)] + [N.backup(9)])
    code, out, _ = await run(
        "backup", "list", "--bucket", "default", "--namespace", "books", "--limit", "5"
    )
    assert code == 0 and out.splitlines()[0].split()[:3] == ["ID", "APP", "CLUSTER"]
    assert [line.split()[0] for line in out.splitlines()[1:]] == [N.backup(9)]
    code, out, _ = await run("-o", "yaml", "backup", "get", N.backup(2), "--bucket", "default")
    doc = yaml.safe_load(out)
    assert code == 0 and doc["app_id"] == N.shop_app and doc["namespaces"] == ["shop"]
    code, out, _ = await run("snapshot", "list", "--app", N.shop_app, "--limit", "2")
    rows = out.splitlines()
    assert code == 0 and rows[0].split()[:3] == ["ID", "APP_ID", "PHASE"] and len(rows) == 3
    code, out, _ = await run("-o", "json", "snapshot", "get", N.snapshot(1))
    assert code == 0 and json.loads(out)["volumes"][0]["volume_snapshot"] == f"vs-{N.snapshot(1)}"
    code, _, err = await run("backup", "get", "bk-none", "--bucket", "default")
    assert code == 1 and "NOT_FOUND" in err


async def test_snapshot_and_backup_create_send_their_commands(run: Any, world: World) -> None:
    code, out, err = await run(
        "-o", "json", "snapshot", "create", N.shop_app, "--bucket", "default"
    )  # fmt: skip
    assert code == 0, err
    op = json.loads(out)
    assert op["kind"] == "snapshot" and op["phase"] == "New"
    code, out, err = await run(
        "-o", "json", "backup", "create", N.shop_app, "--bucket", "default",
        "--snapshot", N.snapshot(0),
    )  # fmt: skip
    assert code == 0, err
    command = await last_command(world.bus, subjects.CREATE_BACKUP)
    assert command.snapshot_id == N.snapshot(0)  # type: ignore[attr-defined]
    code, out, err = await run("snapshot", "delete", N.snapshot(2))
    assert code == 0 and "delete-snapshot" in out


async def test_schedule_verbs(run: Any, world: World) -> None:
    schedule_id = unique("nightly")
    code, out, err = await run(
        "-o", "json", "schedule", "create", N.shop_app, "--id", schedule_id,
        "--kind", "backup", "--bucket", "default", "--daily", "--at", "02:30",
        "--keep-daily", "7", "--keep-weekly", "4", "--floor", "3",
    )  # fmt: skip
    assert code == 0, err
    made = json.loads(out)
    assert (made["frequency"], made["hour"], made["minute"]) == ("daily", 2, 30)
    command = await last_command(world.bus, subjects.PUT_SCHEDULE)
    assert isinstance(command, PutSchedule) and command.schedule.id == schedule_id
    assert (command.schedule.retention.daily, command.schedule.retention.floor) == (7, 3)
    code, out, err = await run(
        "schedule", "create", N.shop_app, "--bucket", "default", "--cron", "*/10 * * * *",
        "--keep-hourly", "12",
    )  # fmt: skip
    assert code == 0, err
    assert "*/10 * * * *" in out
    code, _, err = await run(
        "schedule", "create", N.shop_app, "--bucket", "default", "--cron", "0 25 * * *"
    )
    assert code == 1 and "INVALID_ARGUMENT" in err and "schedule.cron" in err
    code, out, _ = await run("schedule", "list", "--app", N.books_app)
    assert code == 0 and [r.split()[0] for r in out.splitlines()[1:]] == [f"{N.schedule}-b"]
    code, out, _ = await run("-o", "yaml", "schedule", "get", N.schedule)
    assert code == 0 and yaml.safe_load(out)["retention"]["floor"] == 3
    code, out, _ = await run("schedule", "delete", N.schedule)
    assert code == 0 and N.schedule in out


async def test_restore_with_every_option(run: Any, world: World, tmp_path: Path) -> None:
    patch = [{"op": "replace", "path": "/spec/replicas", "value": 0}]
    transforms = tmp_path / "scale-down.json"
    transforms.write_text(json.dumps([{"match": {"kinds": ["Deployment"]}, "patch": patch}]))
    asked = len(world.preflight_requests)
    code, out, err = await run(
        "-o", "json", "restore", N.backup(1), "--bucket", "default", "--to-cluster", N.west,
        "--namespace-map", "shop:shop-copy", "--sc-map", "fast:gold",
        "--include", "kind=ConfigMap,kind=Deployment", "--exclude", "name=foo,label.tier=cache",
        "--transform", str(transforms), "--existing", "update",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["namespace_mapping"] == {"shop": "shop-copy"}
    (query,) = world.preflight_requests[asked:]
    options = query["options"]
    assert options["storage_class_mapping"] == {"fast": "gold"}
    assert options["include"][0]["kinds"] == ["ConfigMap", "Deployment"]
    assert options["exclude"][0]["names"] == ["foo"]
    assert options["exclude"][0]["labels"] == {"tier": "cache"}
    assert options["transforms"][0]["patch"] == patch and options["existing"] == "update"
    assert options["cleanup_on_failure"] is True  # unless asked otherwise
    code, _, err = await run(
        "restore", N.backup(1), "--bucket", "default", "--to-cluster", N.east, "--in-place"
    )
    assert code == 1 and "--yes" in err  # no terminal to ask: refused before any call
    assert len(world.preflight_requests) == asked + 1
    code, _, err = await run(
        "restore", "create", N.backup(1), "--bucket", "default", "--to-cluster", N.east,
        "--in-place", "--yes", "--no-cleanup-on-failure",
    )  # fmt: skip
    assert code == 0, err
    assert world.preflight_requests[-1]["options"]["cleanup_on_failure"] is False
    assert world.preflight_requests[-1]["options"]["in_place"] is True
    assert world.preflight_requests[-1]["options"]["confirm"] is True
    code, _, err = await run(
        "restore", N.backup(1), "--bucket", "default", "--to-cluster", N.west,
        "--include", "colour=blue",
    )  # fmt: skip
    assert code == 1 and "not kind, name, namespace or label" in err


async def test_backup_wait_shows_live_progress(run: Any, world: World) -> None:
    request_id = unique("live")
    op_id = f"backup-{request_id}"
    operations = await world.bus.kv("operations")
    running = Operation(
        id=op_id,
        kind="backup",
        app_id=N.shop_app,
        bucket="default",
        phase="InProgress",
        volumes=[VolumeWork(claim="data", namespace="shop", transfer_id="t-live", state="Moving")],
    )
    await operations.put(op_id, running.model_dump_json().encode())

    async def feed() -> None:
        requests = await world.bus.kv("requests")
        for _ in range(200):  # until the CLI's CreateBackup is recorded
            if await requests.get(f"op.{op_id}") is not None:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        for files in (10, 20):
            await world.bus.publish(
                subjects.TRANSFER_PROGRESS,
                TransferProgress(
                    transfer_id="t-live",
                    operation_id=op_id,
                    cluster=N.east,
                    direction="backup",
                    files=files,
                    bytes=files << 20,
                    bytes_per_second=float(2 << 20),
                    total_bytes=40 << 20,
                    eta_seconds=(40 - files) / 2,
                ),
            )
        await asyncio.sleep(1.0)
        done = running.model_copy(update={"phase": Phase.COMPLETED, "message": "1 volume"})
        await operations.put(op_id, done.model_dump_json().encode())

    feeding = asyncio.create_task(feed())
    code, out, err = await run(
        "-o", "json", "backup", "create", N.shop_app, "--bucket", "default",
        "--request-id", request_id, "--wait", "--timeout", "30",
    )  # fmt: skip
    await feeding
    assert code == 0, err
    assert json.loads(out)["phase"] == "Completed"  # stdout: the finished operation only
    lines = err.splitlines()
    assert lines[0] == f"backup {op_id}: InProgress"
    assert lines[1] == (
        "shop/data  backup  10 files  10.0 MiB / 40.0 MiB (25%)  2.0 MiB/s  ETA 0:00:15"
    )
    assert lines[2].startswith("shop/data  backup  20 files  20.0 MiB / 40.0 MiB (50%)")
    assert lines[-1] == f"backup {op_id}: Completed - 1 volume"


async def test_app_unmanage_and_manage_send_their_commands(run: Any, world: World) -> None:
    code, out, err = await run("-o", "json", "app", "unmanage", N.shop_app)
    assert code == 0, err
    assert "left out of the inventory" in json.loads(out)["message"]
    command = await last_command(world.bus, subjects.DEFINE_APP)
    assert isinstance(command, DefineApp) and command.unmanaged and command.include == []
    assert f"{command.cluster}.{command.namespace}.{command.name}" == N.shop_app
    code, out, err = await run("-o", "json", "app", "manage", N.shop_app)
    assert code == 0, err
    assert json.loads(out)["managed"] is True
    manage = await last_command(world.bus, subjects.UNDEFINE_APP)
    assert isinstance(manage, UndefineApp)
    assert f"{manage.cluster}.{manage.namespace}.{manage.name}" == N.shop_app
    code, _, err = await run("app", "unmanage", "not-an-app")
    assert code != 0 and "'not-an-app' is not an app id" in err
