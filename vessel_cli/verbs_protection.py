"""The grammar of `vessel snapshot|backup|restore|schedule|verify|platform|bucket|clone|migrate|
hook`.

Each verb names the function that runs it as "module:function"; `vessel_cli.main` imports
that module only when the verb runs, so parsing loads neither gRPC nor the API stubs.
"""

from __future__ import annotations

import argparse

from vessel_cli.options import (
    HOOK_STAGES,
    Parsers,
    limited,
    long_running,
    parse_at,
    restore_flags,
    verbs,
)


def _snapshot(resources: Parsers) -> None:
    snapshot = verbs(resources, "snapshot", "app snapshots (resources + volume snapshots)")
    p = snapshot.add_parser("create", help="snapshot an app")
    p.add_argument("app", help="app id <cluster>.<namespace>.<name>")
    p.add_argument("--bucket", required=True, help="where the resource archive is kept")
    long_running(p, "snapshot")
    p.set_defaults(run="vessel_cli.protection:snapshot_create")
    p = snapshot.add_parser("list")
    limited(p, "app", "cluster", "namespace")
    p.set_defaults(run="vessel_cli.protection:snapshot_list")
    p = snapshot.add_parser("get")
    p.add_argument("id")
    p.set_defaults(run="vessel_cli.protection:snapshot_get")
    p = snapshot.add_parser("delete", help="delete a snapshot and its VolumeSnapshots")
    p.add_argument("id")
    long_running(p, "deletion")
    p.set_defaults(run="vessel_cli.protection:snapshot_delete")


def _backup(resources: Parsers) -> None:
    backup = verbs(resources, "backup", "app backups in a bucket")
    p = backup.add_parser("create", help="back up an app (or one of its snapshots)")
    p.add_argument("app", help="app id <cluster>.<namespace>.<name>")
    p.add_argument("--bucket", required=True)
    p.add_argument("--snapshot", default="", help="copy this existing snapshot")
    long_running(p, "backup")
    p.set_defaults(run="vessel_cli.protection:backup_create")
    p = backup.add_parser("list", help="every backup the bucket's catalog holds")
    p.add_argument("--bucket", required=True)
    limited(p, "app", "cluster", "namespace")
    p.set_defaults(run="vessel_cli.protection:backup_list")
    p = backup.add_parser("get")
    p.add_argument("id")
    p.add_argument("--bucket", required=True)
    p.set_defaults(run="vessel_cli.protection:backup_get")
    p = backup.add_parser("delete", help="delete a backup from its bucket")
    p.add_argument("id")
    p.add_argument("--bucket", required=True)
    long_running(p, "deletion")
    p.set_defaults(run="vessel_cli.protection:backup_delete")
    _backup_files(backup)

    p = resources.add_parser("restore", help="restore a backup (`restore create` also works)")
    p.add_argument("backup", nargs="+", metavar="BACKUP", help="backup id (or: create BACKUP)")
    p.add_argument("--bucket", required=True)
    p.add_argument("--to-cluster", required=True)
    restore_flags(p)
    p.add_argument("--in-place", action="store_true", help="replace the app where it runs")
    p.add_argument("--yes", action="store_true", help="confirm --in-place without asking")
    p.add_argument(
        "--cleanup-on-failure",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="if the restore fails or is canceled, delete what it created (default); with "
        "--no-cleanup-on-failure it stays, each claim annotated vessel.io/restore-incomplete",
    )
    p.add_argument(
        "--trust-unsealed",
        action="store_true",
        help="restore a backup written before sealing (vessel.backup/1), which cannot be "
        "verified (admin only)",
    )
    long_running(p, "restore")
    p.set_defaults(run="vessel_cli.protection:restore_create")


def _volume(p: argparse.ArgumentParser) -> None:
    p.add_argument("backup", metavar="BACKUP", help="backup id")
    p.add_argument("--bucket", required=True)
    p.add_argument("--volume", required=True, metavar="NS/PVC", help="the backed-up claim")
    p.add_argument("--cluster", default="", help="whose mover reads (default: the backup's)")


def _backup_files(backup: Parsers) -> None:
    p = backup.add_parser("ls", help="list a directory of a backed-up volume")
    _volume(p)
    p.add_argument("--path", default="/", help="directory in the volume (default: its root)")
    p.add_argument("--limit", type=int, default=0, help="at most this many (0: all)")
    p.set_defaults(run="vessel_cli.files:backup_ls")
    p = backup.add_parser(
        "restore-files", help="restore chosen files or directories of a backed-up volume"
    )
    _volume(p)
    p.add_argument("--path", dest="paths", action="append", required=True, metavar="PATH")
    p.add_argument("--to-cluster", default="", help="default: the backup's cluster")
    p.add_argument("--to-claim", default="", metavar="NS/PVC", help="default: --volume")
    p.add_argument("--target-dir", default="", help="where in the claim (default: in place)")
    long_running(p, "restore")
    p.set_defaults(run="vessel_cli.files:backup_restore_files")
    p = backup.add_parser(
        "download", help="write a file (or a tar of a directory) of a backed-up volume"
    )
    _volume(p)
    p.add_argument("--path", required=True, help="a file, or a directory (as a tar)")
    p.add_argument("--out", "-O", default="-", help="file to write (default: stdout)")
    p.set_defaults(run="vessel_cli.files:backup_download", streams=True)


def _schedule(resources: Parsers) -> None:
    schedule = verbs(resources, "schedule", "protection schedules with GFS retention")
    p = schedule.add_parser("create")
    p.add_argument("app", help="app id <cluster>.<namespace>.<name>")
    p.add_argument("--kind", choices=["snapshot", "backup", "verify"], default="backup")
    p.add_argument("--bucket", required=True)
    p.add_argument("--id", default="", help="schedule id (default: chosen by Vessel)")
    when = p.add_mutually_exclusive_group()
    for frequency in ("hourly", "daily", "weekly", "monthly"):
        when.add_argument(f"--{frequency}", dest="frequency", action="store_const", const=frequency)
    when.add_argument("--cron", help="5-field cron expression, UTC")
    p.add_argument("--at", type=parse_at, help="HH:MM UTC (hourly: :MM)")
    p.add_argument("--day", default="", help="weekly: sun..sat; monthly: 1..28")
    for tier in ("hourly", "daily", "weekly", "monthly", "yearly"):
        p.add_argument(f"--keep-{tier}", type=int, default=0, metavar="N")
    p.add_argument("--floor", type=int, help="never delete the newest N good runs (default 1)")
    p.add_argument(
        "--floor-verified", type=int, default=0, metavar="N", help="nor the newest N verified"
    )
    p.add_argument("--to-cluster", default="", help="--kind verify: where the copy goes")
    p.add_argument("--paused", action="store_true")
    p.add_argument("--request-id", default="")
    p.set_defaults(run="vessel_cli.protection:schedule_create")
    p = schedule.add_parser("list", help="schedules, their next run and how the last one ended")
    limited(p, "app")
    p.set_defaults(run="vessel_cli.protection:schedule_list")
    p = schedule.add_parser("get")
    p.add_argument("id")
    p.set_defaults(run="vessel_cli.protection:schedule_get")
    p = schedule.add_parser("delete")
    p.add_argument("id")
    p.set_defaults(run="vessel_cli.protection:schedule_delete")


def _verify(resources: Parsers) -> None:
    verify = verbs(resources, "verify", "restore verification: show that backups restore")
    p = verify.add_parser("run", help="verify a backup now (default: the app's newest)")
    p.add_argument("app", help="app id <cluster>.<namespace>.<name>")
    p.add_argument("--bucket", required=True)
    p.add_argument("--backup", default="", help="this backup id")
    p.add_argument("--to-cluster", default="", help="where the copy goes (default: the backup's)")
    long_running(p, "verification")
    p.set_defaults(run="vessel_cli.protection:verify_run")
    p = verify.add_parser("create", help="verify the app's newest backup on a schedule")
    p.add_argument("app", help="app id <cluster>.<namespace>.<name>")
    p.add_argument("--bucket", required=True)
    when = p.add_mutually_exclusive_group(required=True)
    frequencies = ["hourly", "daily", "weekly", "monthly"]
    when.add_argument("--schedule", dest="frequency", choices=frequencies)
    when.add_argument("--cron", help="5-field cron expression, UTC")
    p.add_argument("--at", type=parse_at, help="HH:MM UTC (hourly: :MM)")
    p.add_argument("--day", default="", help="weekly: sun..sat; monthly: 1..28")
    p.add_argument("--to-cluster", default="", help="where the copy goes (default: the backup's)")
    p.add_argument("--id", default="", help="schedule id (default: chosen by Vessel)")
    p.add_argument("--paused", action="store_true")
    p.add_argument("--request-id", default="")
    p.set_defaults(run="vessel_cli.protection:verify_create", kind="verify")


def _platform(resources: Parsers) -> None:
    platform = verbs(resources, "platform", "Vessel's own policies, kept in every bucket")
    p = platform.add_parser(
        "recover", help="replay a bucket's schedules, hooks, app definitions and buckets"
    )
    p.add_argument("--bucket", required=True)
    p.add_argument(
        "--from",
        dest="from_install",
        default="",
        metavar="INSTALL",
        help="whose export (default: the most recent of another install)",
    )
    long_running(p, "recovery")
    p.set_defaults(run="vessel_cli.protection:platform_recover")


def _bucket(resources: Parsers) -> None:
    bucket = verbs(resources, "bucket", "backup buckets (configured or registered)")
    bucket.add_parser("list").set_defaults(run="vessel_cli.protection:bucket_list")
    p = bucket.add_parser("get")
    p.add_argument("name")
    p.set_defaults(run="vessel_cli.protection:bucket_get")
    p = bucket.add_parser("register", help="register (or re-point) a bucket at run time")
    p.add_argument("name")
    # After this verb --endpoint is the object store's; the gateway's global --endpoint
    # still works before the resource (or as $VESSEL_ENDPOINT).
    p.add_argument(
        "--endpoint",
        dest="s3_endpoint",
        required=True,
        metavar="HOST:PORT",
        help="the object store's S3 endpoint (here --endpoint is not the gateway's: give "
        "that before `bucket`, e.g. `vessel --endpoint GW bucket register ...`)",
    )
    p.add_argument("--bucket", required=True, help="the bucket's name in the object store")
    p.add_argument("--secret", required=True, metavar="NS/NAME", help="Secret with the keys")
    p.add_argument("--access-key-key", default="access_key", metavar="KEY")
    p.add_argument("--secret-key-key", default="secret_key", metavar="KEY")
    p.add_argument("--password-key", default="password", metavar="KEY", help="repository's")
    p.add_argument("--secure", action="store_true", help="reach the endpoint over TLS")
    p.add_argument("--repository", default="", help="path in the bucket (default repository)")
    p.add_argument("--like", default="", help="create the repository like this bucket's")
    p.add_argument("--request-id", default="")
    p.set_defaults(run="vessel_cli.protection:bucket_register")
    p = bucket.add_parser("remove", help="forget a registered bucket (its objects stay)")
    p.add_argument("name")
    p.add_argument("--request-id", default="")
    p.set_defaults(run="vessel_cli.protection:bucket_remove")


def _copy_flags(p: Parsers, what: str) -> None:
    p.add_argument("app", help="app id <cluster>.<namespace>.<name>")
    p.add_argument("--to-cluster", required=True, help="the cluster the copy goes to")
    p.add_argument("--bucket", required=True, help="where the backup step writes")
    restore_flags(p)
    long_running(p, what)


def _mobility(resources: Parsers) -> None:
    p = resources.add_parser("clone", help="copy an app into another namespace or cluster")
    _copy_flags(p, "clone")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--from-snapshot", default="", metavar="SNAPSHOT", help="an app snapshot")
    source.add_argument("--from-backup", default="", metavar="BACKUP", help="a backup in --bucket")
    p.set_defaults(run="vessel_cli.mobility:clone_create")

    p = resources.add_parser("migrate", help="move an app: back up, restore, scale the source down")
    _copy_flags(p, "migration")
    p.add_argument(
        "--keep-source-running", action="store_true", help="do not scale the source down"
    )
    p.set_defaults(run="vessel_cli.mobility:migration_create")


def _hook(resources: Parsers) -> None:
    hook = verbs(resources, "hook", "execution hooks: commands run in an app's containers")

    def ref(p: Parsers) -> None:
        p.add_argument("app", help="app id <cluster>.<namespace>.<name>")
        p.add_argument("hook_id", metavar="HOOK_ID")

    p = hook.add_parser("put", help="create or replace a hook")
    ref(p)
    p.add_argument("--stage", required=True, choices=HOOK_STAGES)
    p.add_argument("--container-name", default="", metavar="REGEX", help="containers named so")
    p.add_argument("--container-image", default="", metavar="REGEX", help="images matching")
    action = p.add_mutually_exclusive_group(required=True)
    action.add_argument("--command", help="the command line, split like a shell (no shell)")
    action.add_argument("--fsfreeze", action="store_true", help="freeze/thaw the app's mounts")
    p.add_argument("--timeout", type=int, default=30, help="seconds the hook may run")
    p.add_argument("--on-failure", choices=["fail", "continue"], default="fail")
    p.add_argument("--request-id", default="")
    p.set_defaults(run="vessel_cli.mobility:hook_put")
    p = hook.add_parser("list", help="hooks, of one app or all in scope")
    p.add_argument("app", nargs="?", default="", help="app id (default: every app)")
    p.add_argument("--limit", type=int, default=0, help="at most this many (0: all)")
    p.set_defaults(run="vessel_cli.mobility:hook_list")
    p = hook.add_parser("get")
    ref(p)
    p.set_defaults(run="vessel_cli.mobility:hook_get")
    p = hook.add_parser("delete")
    ref(p)
    p.add_argument("--request-id", default="")
    p.set_defaults(run="vessel_cli.mobility:hook_delete")


def add_parsers(resources: Parsers) -> None:
    _snapshot(resources)
    _backup(resources)
    _schedule(resources)
    _verify(resources)
    _platform(resources)
    _bucket(resources)
    _mobility(resources)
    _hook(resources)
