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
from vessel.cli.output import COLUMNS
from vessel.cli.protection import LIST_PAGE, watch
from vessel.cli.protection_requests import restore_fields, restore_flags
from vessel.contracts.hooks import STAGES

COLUMNS.update(
    {
        "Hook": [
            "app_id", "id", "stage", "container_name", "container_image", "command", "builtin",
            "timeout_seconds", "on_failure",
        ],
    }
)  # fmt: skip
Parsers = Any
"""The `add_subparsers` object of the `vessel` parser."""


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


def _copy_flags(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("app", help="app id <cluster>.<namespace>.<name>")
    p.add_argument("--to-cluster", required=True, help="the cluster the copy goes to")
    p.add_argument("--bucket", required=True, help="where the backup step writes")
    restore_flags(p)
    p.add_argument("--request-id", default="", help="idempotency key: a retry returns the same")
    p.add_argument("--wait", action="store_true", help=f"follow the {what} live until it ends")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds to follow (--wait)")


def _hook_ref(p: argparse.ArgumentParser) -> None:
    p.add_argument("app", help="app id <cluster>.<namespace>.<name>")
    p.add_argument("hook_id", metavar="HOOK_ID")


def add_parsers(resources: Parsers) -> None:
    p = resources.add_parser("clone", help="copy an app into another namespace or cluster")
    _copy_flags(p, "clone")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--from-snapshot", default="", metavar="SNAPSHOT", help="an app snapshot")
    source.add_argument("--from-backup", default="", metavar="BACKUP", help="a backup in --bucket")
    p.set_defaults(run=clone_create)

    p = resources.add_parser("migrate", help="move an app: back up, restore, scale the source down")
    _copy_flags(p, "migration")
    p.add_argument(
        "--keep-source-running", action="store_true", help="do not scale the source down"
    )
    p.set_defaults(run=migration_create)

    hook = resources.add_parser(
        "hook", help="execution hooks: commands run in an app's containers"
    ).add_subparsers(dest="verb", required=True)
    p = hook.add_parser("put", help="create or replace a hook")
    _hook_ref(p)
    p.add_argument("--stage", required=True, choices=STAGES)
    p.add_argument("--container-name", default="", metavar="REGEX", help="containers named so")
    p.add_argument("--container-image", default="", metavar="REGEX", help="images matching")
    action = p.add_mutually_exclusive_group(required=True)
    action.add_argument("--command", help="the command line, split like a shell (no shell)")
    action.add_argument("--fsfreeze", action="store_true", help="freeze/thaw the app's mounts")
    p.add_argument("--timeout", type=int, default=30, help="seconds the hook may run")
    p.add_argument("--on-failure", choices=["fail", "continue"], default="fail")
    p.add_argument("--request-id", default="")
    p.set_defaults(run=hook_put)
    p = hook.add_parser("list", help="hooks, of one app or all in scope")
    p.add_argument("app", nargs="?", default="", help="app id (default: every app)")
    p.add_argument("--limit", type=int, default=0, help="at most this many (0: all)")
    p.set_defaults(run=hook_list)
    p = hook.add_parser("get")
    _hook_ref(p)
    p.set_defaults(run=hook_get)
    p = hook.add_parser("delete")
    _hook_ref(p)
    p.add_argument("--request-id", default="")
    p.set_defaults(run=hook_delete)
