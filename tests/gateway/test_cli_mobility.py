"""`vessel clone|migrate|hook` and `vessel bucket register|remove` against a real gateway
over TLS (real NATS, a real S3 bucket; bucket registration verified by protection's bucket
registry in-process against Secrets in an emulated cluster), in every output format."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import yaml

from services.protection.bucket_admin import BucketAdmin
from tests.gateway.harness import Pki, unique
from tests.gateway.protection_harness import (
    Names,
    World,
    last_command,
    open_world,
)
from vessel.buckets import BucketRegistry, kube_secret_reader
from vessel.config import VesselSettings
from vessel.contracts import subjects
from vessel.contracts.hooks import ExecHook, PutHook, RemoveHook
from vessel.contracts.protection import CreateClone, CreateMigration
from vessel.kube.client import KubeCluster
from vessel_dev.rig.processes import NatsServer, S3Server

N = Names()
pytestmark = pytest.mark.usefixtures("no_client_env")


@pytest.fixture(scope="module")
async def world(nats_server: NatsServer, s3_server: S3Server, pki: Pki) -> AsyncIterator[World]:
    async with open_world(N, "cli-mobility", nats_server, s3_server, pki, preflight=True) as w:
        yield w


# ---- clone and migrate ----


async def test_clone_from_the_live_app_a_snapshot_or_a_backup(run: Any, world: World) -> None:
    rid = unique("c")
    code, out, err = await run(
        "-o", "json", "clone", N.shop_app, "--to-cluster", N.west, "--bucket", "default",
        "--namespace-map", "shop:shop-copy", "--request-id", rid,
    )  # fmt: skip
    assert code == 0, err
    op = json.loads(out)
    assert (op["id"], op["kind"], op["phase"]) == (f"clone-{rid}", "clone", "New")
    command = await last_command(world.bus, subjects.CREATE_CLONE)
    assert isinstance(command, CreateClone) and command.source == "live"
    assert command.namespace_mapping == {"shop": "shop-copy"} and command.operation_id == op["id"]

    code, out, err = await run(
        "-o", "yaml", "clone", N.shop_app, "--to-cluster", N.west, "--bucket", "default",
        "--namespace-map", "shop:shop-copy", "--from-snapshot", N.snapshot(0),
    )  # fmt: skip
    assert code == 0, err
    assert yaml.safe_load(out)["kind"] == "clone"
    command = await last_command(world.bus, subjects.CREATE_CLONE)
    assert isinstance(command, CreateClone)
    assert (command.source, command.snapshot_id) == ("snapshot", N.snapshot(0))

    asked = len(world.preflight_requests)
    code, out, err = await run(
        "clone", N.shop_app, "--to-cluster", N.west, "--bucket", "default",
        "--namespace-map", "shop:shop-copy", "--from-backup", N.backup(3),
        "--sc-map", "fast:gold", "--exclude", "kind=Service", "--existing", "update",
    )  # fmt: skip
    assert code == 0, err
    header, row = out.splitlines()
    assert header.split() == ["ID", "KIND", "TARGET", "PHASE", "PROGRESS", "AGE", "DURATION"]
    cells = re.split(r"\s{2,}", row.strip())
    assert cells[1:5] == ["clone", f"{N.shop_app} -> {N.west}/shop-copy", "New", "-"]
    (query,) = world.preflight_requests[asked:]
    assert query["backup_id"] == N.backup(3)
    assert query["options"]["storage_class_mapping"] == {"fast": "gold"}
    command = await last_command(world.bus, subjects.CREATE_CLONE)
    assert isinstance(command, CreateClone) and command.source == "backup"
    assert command.options.exclude[0].kinds == ["Service"] and command.options.existing == "update"


async def test_clone_errors_are_explained(run: Any) -> None:
    base = ["clone", N.shop_app, "--to-cluster", N.west, "--namespace-map", "shop:shop-copy"]
    code, _, err = await run(*base, "--bucket", "nowhere")
    assert code == 1 and "NOT_FOUND" in err and "nowhere" in err
    code, _, err = await run(*base, "--bucket", "default", "--from-backup", "bk-none")
    assert code == 1 and "NOT_FOUND" in err and "bk-none" in err
    code, _, err = await run(
        *base, "--bucket", "default", "--from-snapshot", "s", "--from-backup", "b"
    )
    assert code == 2 and "not allowed with" in err
    code, _, err = await run(*base, "--bucket", "default", "--namespace-map", "shop")
    assert code == 1 and "is not SOURCE:TARGET" in err
    code, _, err = await run(*base, "--bucket", "default", "--sc-map", "fast:Not_A_Class")
    assert code == 1 and "INVALID_ARGUMENT" in err and "storage_class_mapping[fast]" in err


async def test_migrate_scales_down_unless_the_source_keeps_running(run: Any, world: World) -> None:
    base = ["migrate", N.shop_app, "--to-cluster", N.west, "--bucket", "default"]
    code, out, err = await run("-o", "json", *base, "--namespace-map", "shop:shop-copy")
    assert code == 0, err
    assert json.loads(out)["kind"] == "migrate"
    command = await last_command(world.bus, subjects.CREATE_MIGRATION)
    assert isinstance(command, CreateMigration) and command.scale_down_source is True
    assert command.operation_id == json.loads(out)["id"]
    code, out, err = await run("-o", "yaml", *base, "--keep-source-running")
    assert code == 0, err
    command = await last_command(world.bus, subjects.CREATE_MIGRATION)
    assert isinstance(command, CreateMigration) and command.scale_down_source is False
    assert command.operation_id == yaml.safe_load(out)["id"] and command.namespace_mapping == {}


# ---- hooks ----


async def test_hook_put_list_get_delete(run: Any, world: World) -> None:
    code, out, err = await run(
        "-o", "json", "hook", "put", N.shop_app, "flush", "--stage", "pre-snapshot",
        "--container-name", "^db$", "--command", 'sh -c "sync; sleep 1"', "--timeout", "12",
        "--on-failure", "continue",
    )  # fmt: skip
    assert code == 0, err
    answer = json.loads(out)
    assert answer["command"] == ["sh", "-c", "sync; sleep 1"] and answer["timeout_seconds"] == 12
    command = await last_command(world.bus, subjects.PUT_HOOK)
    assert isinstance(command, PutHook)
    assert command.hook.command == ["sh", "-c", "sync; sleep 1"]
    assert (command.hook.container_name, command.hook.on_failure) == ("^db$", "continue")
    code, out, err = await run(
        "hook", "put", N.shop_app, "freeze", "--stage", "pre-backup",
        "--container-image", "postgres", "--fsfreeze",
    )  # fmt: skip
    assert code == 0, err
    command = await last_command(world.bus, subjects.PUT_HOOK)
    assert isinstance(command, PutHook) and command.hook.builtin == "fsfreeze"
    code, _, err = await run("hook", "put", N.shop_app, "x", "--stage", "pre-backup")
    assert code == 2 and "--command" in err  # an action is required
    code, _, err = await run(
        "hook", "put", N.shop_app, "x", "--stage", "pre-backup", "--command", "true"
    )
    assert code == 1 and "INVALID_ARGUMENT" in err and "container_name" in err

    kv = await world.bus.kv("hooks")  # protection stores what it was sent
    stored = ExecHook(
        id="flush", app_id=N.shop_app, stage="pre-snapshot", container_name="^db$",
        command=["sh", "-c", "sync"],
    )  # fmt: skip
    await kv.put(stored.key, stored.model_dump_json().encode())
    code, out, err = await run("hook", "list", N.shop_app)
    assert code == 0, err
    header, row = out.splitlines()
    assert header.split()[:4] == ["APP_ID", "ID", "STAGE", "CONTAINER_NAME"]
    assert row.split()[:4] == [N.shop_app, "flush", "pre-snapshot", "^db$"]
    code, out, _ = await run("-o", "yaml", "hook", "get", N.shop_app, "flush")
    assert code == 0 and yaml.safe_load(out)["command"] == ["sh", "-c", "sync"]
    code, out, _ = await run("-o", "json", "hook", "list")
    listed = json.loads(out)
    assert any(
        h["app_id"] == N.shop_app for h in (listed if isinstance(listed, list) else [listed])
    )
    code, out, err = await run("hook", "delete", N.shop_app, "flush")
    assert code == 0, err
    assert "flush" in out
    command = await last_command(world.bus, subjects.REMOVE_HOOK)
    assert isinstance(command, RemoveHook) and command.hook_id == "flush"
    code, _, err = await run("hook", "get", N.shop_app, "nothing")
    assert code == 1 and "NOT_FOUND" in err


# ---- buckets ----


@pytest.fixture
async def bucket_admin(world: World, kube: KubeCluster, s3_server: S3Server) -> AsyncIterator[str]:
    """Protection's bucket registry, in-process; the namespace of the Secret with the keys."""
    namespace = f"vessel-{N.run}"
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    data = {"access_key": s3_server.access_key, "s3-secret": s3_server.secret_key, "pw": "pw"}
    await kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s3", "namespace": namespace},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        }
    )
    kv = await world.bus.kv("buckets")
    registry = BucketRegistry(VesselSettings(), kv, kube_secret_reader(kube))
    admin = BucketAdmin(world.bus, kv, registry)
    durable = f"tests-cli-bucket-admin-{N.run}"
    commands = await world.bus.consume(
        durable, {subjects.PUT_BUCKET: admin.on_put, subjects.REMOVE_BUCKET: admin.on_remove}
    )
    yield namespace
    commands.cancel()
    # A work-queue stream gives each subject to one consumer: leave none behind.
    await world.bus.js.delete_consumer(subjects.COMMANDS_STREAM, durable)


async def test_bucket_register_and_remove(run: Any, world: World, bucket_admin: str) -> None:
    name = f"reg-{N.run}"
    endpoint = world.s3_endpoint
    code, out, err = await run(
        "-o", "json", "bucket", "register", name, "--endpoint", endpoint,
        "--bucket", world.dr_store.bucket, "--secret", f"{bucket_admin}/s3",
        "--secret-key-key", "s3-secret", "--password-key", "pw", "--repository", "repo",
    )  # fmt: skip
    assert code == 0, err
    registered = json.loads(out)
    assert (registered["name"], registered["source"], registered["repository"]) == (
        name,
        "registered",
        "repo",
    )
    assert registered["secret_key"] == {"namespace": bucket_admin, "name": "s3", "key": "s3-secret"}
    assert registered["access_key"]["key"] == "access_key"
    code, out, _ = await run("bucket", "list")
    assert code == 0 and name in out
    code, _, err = await run(
        "bucket", "register", f"{name}-bad", "--endpoint", endpoint, "--bucket", "nope-bucket",
        "--secret", f"{bucket_admin}/missing",
    )  # fmt: skip
    assert code == 1 and "FAILED_PRECONDITION" in err
    code, _, err = await run("bucket", "register", "x", "--endpoint", endpoint, "--bucket", "b",
                             "--secret", "no-slash")  # fmt: skip
    assert code == 1 and "NAMESPACE/NAME" in err
    code, out, err = await run("-o", "yaml", "bucket", "remove", name)
    assert code == 0, err
    assert yaml.safe_load(out)["name"] == name
    code, out, _ = await run("bucket", "list")
    assert name not in out
    code, _, err = await run("bucket", "remove", name)
    assert code == 1 and "NOT_FOUND" in err
    code, _, err = await run("bucket", "remove", "default")
    assert code == 1 and "settings" in err


# ---- completion ----


async def test_completion_offers_the_new_verbs(run: Any) -> None:
    code, out, _ = await run("completion", "bash")
    assert code == 0
    for line in (
        "clone) echo '--help --to-cluster",
        "migrate) echo '--help --to-cluster",
        "hook) echo 'put list get delete --help'",
        "'hook put') echo '--help --stage --container-name --container-image --command",
        "bucket) echo 'list get register remove --help'",
    ):
        assert line in out, line
    assert "--keep-source-running" in out and "--from-backup" in out and "--fsfreeze" in out
