"""`vessel clone|migrate|hook`: copying and moving apps, and the commands run in their
containers around snapshots, backups and restores.

Clones and migrations return their operation at once; `--wait` follows it live like the
other long-running verbs.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

import grpc

from vessel.api.v1 import protection_pb2 as ppb
from vessel.api.v1 import protection_pb2_grpc as prpc
from vessel_cli.protection import LIST_PAGE, watch
from vessel_cli.protection_requests import restore_fields


def clone_request(a: argparse.Namespace) -> ppb.CreateCloneRequest:
    source = "snapshot" if a.from_snapshot else "backup" if a.from_backup else "live"
    return ppb.CreateCloneRequest(
        app_id=a.app,
        source=source,
        snapshot_id=a.from_snapshot,
        backup_id=a.from_backup,
        bucket=a.bucket,
        target_cluster=a.to_cluster,
        request_id=a.request_id,
        **restore_fields(a),
    )


def migration_request(a: argparse.Namespace) -> ppb.CreateMigrationRequest:
    return ppb.CreateMigrationRequest(
        app_id=a.app,
        bucket=a.bucket,
        target_cluster=a.to_cluster,
        keep_source_running=a.keep_source_running,
        request_id=a.request_id,
        **restore_fields(a),
    )


def hook_message(a: argparse.Namespace) -> ppb.Hook:
    try:
        command = shlex.split(a.command) if a.command else []
    except ValueError as exc:
        raise SystemExit(f"error: --command {a.command!r}: {exc}") from None
    return ppb.Hook(
        id=a.hook_id,
        app_id=a.app,
        stage=a.stage,
        container_name=a.container_name,
        container_image=a.container_image,
        command=command,
        builtin="fsfreeze" if a.fsfreeze else "",
        timeout_seconds=a.timeout,
        on_failure=a.on_failure,
    )


def clone_create(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    return [watch(ch, prpc.CloneServiceStub(ch).CreateClone(clone_request(a)), a)]


def migration_create(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    return [watch(ch, prpc.MigrationServiceStub(ch).CreateMigration(migration_request(a)), a)]


def hook_put(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    request = ppb.PutHookRequest(hook=hook_message(a), request_id=a.request_id)
    return [prpc.HookServiceStub(ch).PutHook(request)]


def hook_list(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    stub, token = prpc.HookServiceStub(ch), ""
    hooks: list[ppb.Hook] = []
    while True:
        want = min(LIST_PAGE, a.limit - len(hooks)) if a.limit else LIST_PAGE
        reply = stub.ListHooks(ppb.ListHooksRequest(app_id=a.app, page_size=want, page_token=token))
        hooks += list(reply.hooks)
        token = reply.next_page_token
        if not token or (a.limit and len(hooks) >= a.limit):
            return hooks


def hook_get(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    return [prpc.HookServiceStub(ch).GetHook(ppb.GetHookRequest(app_id=a.app, id=a.hook_id))]


def hook_delete(ch: grpc.Channel, a: argparse.Namespace) -> list[Any]:
    request = ppb.DeleteHookRequest(app_id=a.app, id=a.hook_id, request_id=a.request_id)
    return [prpc.HookServiceStub(ch).DeleteHook(request)]
