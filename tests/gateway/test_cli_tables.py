"""What `vessel operation|schedule|backup list` print for people (a few readable columns)
and for programs (-o json: every field, unchanged), and global flags after the verb,
against a real gateway over TLS with operations, schedules and catalogs as protection
writes them."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from tests.gateway.harness import Pki
from tests.gateway.protection_harness import Names, World, open_world, schedule_spec
from vessel.contracts.operations import Operation, VolumeWork
from vessel.contracts.protection import ItemResult, Retention
from vessel_dev.rig.processes import NatsServer, S3Server

N = Names()
pytestmark = pytest.mark.usefixtures("no_client_env")


@pytest.fixture(scope="module")
async def world(nats_server: NatsServer, s3_server: S3Server, pki: Pki) -> AsyncIterator[World]:
    async with open_world(N, "cli-tables", nats_server, s3_server, pki) as w:
        yield w


def rows(out: str) -> list[dict[str, str]]:
    """A table as {header: cell} per row, cut where the header's columns start (cells may
    hold single spaces, columns are two or more apart)."""
    header, *lines = out.splitlines()
    starts = [(m.group(), m.start()) for m in re.finditer(r"\S+(?: \S+)*", header)]
    ends: list[int | None] = [start for _, start in starts[1:]] + [None]
    bounds = [(name, start, end) for (name, start), end in zip(starts, ends, strict=True)]
    return [{name: line[start:end].strip() for name, start, end in bounds} for line in lines]


def headers(out: str) -> list[str]:
    return re.split(r"\s{2,}", out.splitlines()[0].strip())


async def put_operation(world: World, op: Operation) -> None:
    operations = await world.bus.kv("operations")
    await operations.put(op.id, op.model_dump_json().encode())


async def test_operation_list_shows_target_progress_age_and_duration(
    run: Any, world: World
) -> None:
    now = datetime.now(UTC)
    app = f"{N.west}.shop.web"
    volumes = [
        VolumeWork(claim="data", namespace="shop", transfer_id="t1", state="Done", bytes=3 << 29),
        VolumeWork(claim="logs", namespace="shop", transfer_id="t2", state="Moving", bytes=1 << 29),
    ]
    steps = [
        ItemResult(kind="step", name="backup", state="Completed"),
        ItemResult(kind="step", name="restore", state="InProgress"),
    ]
    ops = [
        Operation(id=f"bk-{N.run}", kind="backup", app_id=app, phase="InProgress",
                  volumes=volumes, created=now - timedelta(hours=3), updated=now),
        Operation(id=f"cl-{N.run}", kind="clone", app_id=app, phase="InProgress", items=steps,
                  message="restoring into east", created=now - timedelta(minutes=10)),
        Operation(id=f"rs-{N.run}", kind="restore", app_id=app, phase="Completed",
                  target_cluster=N.east, namespace_mapping={"shop": "shop-copy"},
                  created=now - timedelta(days=2),
                  updated=now - timedelta(days=2) + timedelta(seconds=125)),
    ]  # fmt: skip
    for op in ops:
        await put_operation(world, op)

    code, out, err = await run("operation", "list", "--app", app)
    assert code == 0, err
    assert headers(out) == [
        "ID", "KIND", "TARGET", "PHASE", "PROGRESS", "AGE", "DURATION", "MESSAGE",
    ]  # fmt: skip
    clone, backup, restore = rows(out)  # newest first
    assert backup == {
        "ID": f"bk-{N.run}", "KIND": "backup", "TARGET": app, "PHASE": "InProgress",
        "PROGRESS": "1/2 volumes, 2.0 GiB", "AGE": "3h", "DURATION": "3h", "MESSAGE": "",
    }  # fmt: skip
    assert (clone["PROGRESS"], clone["AGE"], clone["MESSAGE"]) == (
        "1/2 steps",
        "10m",
        "restoring into east",
    )
    assert (restore["PROGRESS"], restore["AGE"], restore["DURATION"]) == ("-", "2d", "2m5s")
    assert restore["TARGET"] == f"{app} -> {N.east}/shop-copy"  # where the restore wrote

    code, out, _ = await run("operation", "list", "--app", app, "--kind", "restore")
    assert code == 0 and "MESSAGE" not in headers(out)  # an empty column is left out
    code, out, _ = await run("-o", "json", "operation", "list", "--app", app)
    docs = {d["id"]: d for d in json.loads(out)}
    assert code == 0 and docs[f"bk-{N.run}"]["volumes"][0] == {
        "namespace": "shop", "claim": "data", "state": "Done", "bytes": str(3 << 29),
    }  # fmt: skip
    assert docs[f"cl-{N.run}"]["items"][1] == {
        "kind": "step",
        "name": "restore",
        "state": "InProgress",
    }
    assert all(d["requested_by"] == "anonymous" and "updated" in d for d in docs.values())


async def test_schedule_list_reads_as_one_line_per_schedule(run: Any, world: World) -> None:
    now = datetime.now(UTC)
    schedules = await world.bus.kv("schedules")
    hourly = schedule_spec(f"{N.schedule}-h", N.books_app).model_copy(
        update={
            "frequency": "hourly",
            "minute": 0,
            "retention": Retention(daily=3, floor=2),
            "enabled": False,
        }
    )
    await schedules.put(hourly.id, hourly.model_dump_json().encode())
    await put_operation(
        world,
        Operation(
            id=f"sched-run-{N.run}", kind="backup", app_id=N.books_app, phase="Completed",
            requested_by=f"schedule/{N.schedule}-b", created=now - timedelta(hours=5),
        ),
    )  # fmt: skip

    code, out, err = await run("schedule", "list", "--app", N.books_app)
    assert code == 0, err
    assert headers(out) == ["NAME", "APP", "KIND", "BUCKET", "SCHEDULE", "NEXT RUN", "LAST RUN"]
    daily, paused = rows(out)
    assert daily["NAME"] == f"{N.schedule}-b" and daily["APP"] == N.books_app
    assert (daily["KIND"], daily["BUCKET"]) == ("backup", "default")
    assert daily["SCHEDULE"] == "daily at 02:30; keep 7 daily, 4 weekly; floor 3"
    assert daily["LAST RUN"] == "Completed 5h ago"
    due = now.replace(hour=2, minute=30, second=0, microsecond=0)
    due += timedelta(days=1) if due <= now else timedelta()
    hours = int((due - now).total_seconds() // 3600)
    assert re.fullmatch(r"in \d+(h|h\d+m|m|m\d+s|s)", daily["NEXT RUN"]), daily
    if hours >= 3:
        assert daily["NEXT RUN"].removeprefix("in ").split("h")[0] in (str(hours), str(hours - 1))
    assert paused["SCHEDULE"] == "hourly at :00; keep 3 daily; floor 2"
    assert (paused["NEXT RUN"], paused["LAST RUN"]) == ("paused", "-")

    code, out, _ = await run("-o", "json", "schedule", "list", "--app", N.books_app)
    docs = json.loads(out)
    fields = {"id", "app_id", "kind", "bucket", "frequency", "cron", "minute", "hour",
              "day_of_week", "day_of_month", "retention", "paused"}  # fmt: skip
    assert code == 0 and all(set(d) <= fields for d in docs)
    assert docs[0]["retention"] == {"daily": 7, "weekly": 4, "floor": 3}


async def test_backup_list_shows_size_age_and_phase(run: Any, world: World) -> None:
    code, out, err = await run("backup", "list", "--bucket", "default", "--app", N.books_app)
    assert code == 0, err
    assert headers(out) == ["ID", "APP", "CLUSTER", "SIZE", "AGE", "PHASE"]
    (books,) = rows(out)
    days = (datetime.now(UTC) - datetime(2026, 1, 1, tzinfo=UTC)).days  # its `created`
    assert books == {
        "ID": N.backup(9), "APP": N.books_app, "CLUSTER": N.east, "SIZE": "4.0 KiB",
        "AGE": f"{days}d", "PHASE": "Completed (unsealed)",  # the harness writes vessel.backup/1
    }  # fmt: skip

    broken = f"broken-{N.run}"
    world.store.put_bytes(f"backups/{broken}/backup.json", b"{not json")
    code, out, err = await run("backup", "list", "--bucket", "default")
    assert code == 0, err
    assert headers(out)[-1] == "ERROR"
    table = {r["ID"]: r for r in rows(out)}
    assert table[broken]["PHASE"] == "Unreadable" and broken in table[broken]["ERROR"]
    assert table[N.backup(0)]["PHASE"] == "Completed (unsealed)"
    assert table[N.backup(0)]["ERROR"] == ""
    code, out, _ = await run("-o", "yaml", "backup", "get", N.backup(0), "--bucket", "default")
    doc = yaml.safe_load(out)
    assert code == 0 and doc["bytes"] == "4096" and doc["volumes"][0]["claim"] == "data"


async def test_global_flags_after_the_verb_reach_the_gateway(run: Any, world: World) -> None:
    get = ("backup", "get", N.backup(1), "--bucket", "default")
    code, out, _ = await run(*get, "-o", "yaml")
    assert code == 0 and yaml.safe_load(out)["id"] == N.backup(1)
    code, out, _ = await run("-o", "yaml", *get, "--output", "json")
    assert code == 0 and json.loads(out)["id"] == N.backup(1)  # the later flag wins
    code, _, err = await run(*get, "--token", "vsl_nobody_wrong")
    assert code == 1 and "UNAUTHENTICATED" in err
    code, out, _ = await run("--token", "vsl_nobody_wrong", *get, "--token", world.tokens["viewer"])
    assert code == 0 and N.backup(1) in out
