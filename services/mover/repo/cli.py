"""`python -m services.mover.repo.cli`: operate a repository by hand (and from benchmarks).

The repository opens with `--key` (default `password`: VESSEL_REPOSITORY_PASSWORD; the
other providers: services/mover/repo/keyspec.py); S3 keys come from VESSEL_S3_ACCESS_KEY /
VESSEL_S3_SECRET_KEY. `rotate-key --to SPEC` re-wraps the master key under another
provider and deletes the key files `--key` opens; no data is rewritten.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from services.mover.repo.archiver import Archiver
from services.mover.repo.check import check, repair_index
from services.mover.repo.copy import copy_snapshot
from services.mover.repo.errors import RepositoryError
from services.mover.repo.keyspec import key_provider
from services.mover.repo.locks import all_locks, describe, unlock
from services.mover.repo.maintenance import forget, prune
from services.mover.repo.repository import Repository
from services.mover.repo.restorer import Restorer
from vessel.contracts import state
from vessel.objectstore.base import ObjectStore, ObjectStoreError
from vessel.objectstore.local import LocalStore
from vessel.objectstore.lock import LockPolicy, locked
from vessel.objectstore.recovery import recover
from vessel.sealed.keys import KeyProvider
from vessel.sealed.providers.password import PasswordKey
from vessel.sealed.rotation import rotate_key

PROTECTION_PREFIXES = (state.BACKUPS_PREFIX, state.SNAPSHOTS_PREFIX)
"""Where protection's documents lie in the bucket (vessel.contracts.state): backups and app
snapshots' resource archives. Not the catalog head, which is rewritten by design."""


def open_store(args: argparse.Namespace) -> ObjectStore:
    if args.local:
        return LocalStore(Path(args.local))
    from vessel.objectstore.minio_port import MinioStore  # only S3 users pay its import

    store = MinioStore(
        args.s3, args.bucket, os.environ["VESSEL_S3_ACCESS_KEY"], os.environ["VESSEL_S3_SECRET_KEY"]
    )
    lock = getattr(args, "lock", None)
    if not lock:
        return store
    mode, _, days = lock.partition(":")
    if mode not in ("governance", "compliance") or not days.isdigit() or int(days) < 1:
        raise SystemExit(f"error: --lock {lock!r} is not governance:DAYS or compliance:DAYS")
    return locked(store, LockPolicy(mode, int(days)), args.prefix)


def location(text: str) -> ObjectStore:
    """`local:/some/dir` or `s3:host:port/bucket` (keys from the S3 environment variables)."""
    kind, _, rest = text.partition(":")
    if kind == "local" and rest:
        return LocalStore(Path(rest))
    if kind == "s3" and "/" in rest:
        endpoint, bucket = rest.rsplit("/", 1)
        return open_store(argparse.Namespace(local=None, s3=endpoint, bucket=bucket))
    raise SystemExit(f"error: {text!r} is not local:/DIR or s3:HOST:PORT/BUCKET")


def recover_bucket(store: ObjectStore, prefix: str, key: KeyProvider) -> dict[str, object]:
    """Undo deletions and overwrites (vessel/objectstore/recovery.py) of the repository and
    protection's documents, then index packs whose index objects were not locked."""
    prefix = prefix.strip("/")
    done = recover(
        store,
        [*PROTECTION_PREFIXES, f"{prefix}/"],
        key_files=f"{prefix}/keys/",
        skip=(f"{prefix}/locks/",),
    )
    repaired = repair_index(Repository.open(store, prefix, key))
    return {**asdict(done), "repaired_packs": repaired}


def run(args: argparse.Namespace) -> dict[str, object]:
    store = open_store(args)
    key = key_provider(args.key, store, args.prefix)
    if args.command == "init":
        store.ensure_bucket()
        like_store = location(args.like) if args.like else None
        like = (
            Repository.open(
                like_store, args.prefix, key_provider(args.key, like_store, args.prefix)
            )
            if like_store is not None
            else None
        )
        repo = Repository.init(store, args.prefix, key, like=like)
        return {"id": repo.config.id}
    if args.command == "rotate-key":
        new = key_provider(args.to, store, args.prefix, new=True)
        rotation = rotate_key(store, args.prefix, key, new)
        return {
            "written": rotation.written,
            "removed": rotation.removed,
            "locked_until": {k: until.isoformat() for k, until in rotation.locked.items()},
        }
    if args.command == "recover":
        return recover_bucket(store, args.prefix, key)
    repo = Repository.open(store, args.prefix, key)
    if args.command == "copy":
        target_store = location(args.to)
        target_password = os.environ.get("VESSEL_TARGET_REPOSITORY_PASSWORD")
        target_key = (
            PasswordKey(target_password)
            if target_password
            else key_provider(args.key, target_store, args.prefix)
        )
        target = Repository.open(target_store, args.prefix, target_key)
        snapshot_id, copied = copy_snapshot(repo, target, args.snapshot)
        return {
            "snapshot": snapshot_id,
            "blobs": copied.blobs,
            "copied_blobs": copied.copied_blobs,
            "copied_bytes": copied.copied_bytes,
        }
    if args.command == "backup":
        snapshot_id, doc = Archiver(repo).backup(Path(args.source), parent=args.parent)
        return {"snapshot": snapshot_id, "files": doc.files, "bytes": doc.bytes}
    if args.command == "check":
        report = check(repo, read_data=args.read_data)
        return {
            "ok": report.ok,
            "errors": report.errors,
            "warnings": report.warnings,
            "packs": report.packs,
            "blobs": report.blobs,
            "snapshots": report.snapshots,
            "bytes_read": report.bytes_read,
            "locks": [describe(lock) for lock in all_locks(repo)],
        }
    if args.command == "locks":
        return {"locks": [describe(lock) for lock in all_locks(repo)]}
    if args.command == "unlock":
        return {"removed": unlock(repo, everything=args.all)}
    if args.command == "forget":
        locked = forget(repo, args.snapshots)
        return {
            "forgotten": [s for s in args.snapshots if s not in locked],
            "locked_until": {s: until.isoformat() for s, until in locked.items()},
        }
    if args.command == "prune":
        pruned = prune(repo, say=lambda text: print(text, file=sys.stderr, flush=True))
        return {
            "waited_for": pruned.waited_for,
            "deleted_packs": pruned.deleted_packs,
            "deleted_bytes": pruned.deleted_bytes,
            "partly_used_packs": pruned.partly_used_packs,
            "kept_packs": pruned.kept_packs,
            "locked_packs": pruned.locked_packs,
        }
    if args.command == "repair-index":
        return {"repaired_packs": repair_index(repo)}
    if args.command == "restore":
        stats = Restorer(repo).restore(args.snapshot, Path(args.target))
        return {"files": stats.files, "bytes": stats.bytes}
    return {sid: doc.model_dump(mode="json") for sid, doc in repo.snapshots().items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vessel-repo", description=__doc__)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--local", help="repository store in this directory")
    where.add_argument("--s3", help="S3 endpoint host:port")
    parser.add_argument("--bucket", default="vessel-backups")
    parser.add_argument("--prefix", default="repository")
    parser.add_argument(
        "--lock",
        metavar="MODE:DAYS",
        help="write with S3 Object Lock (governance or compliance) for DAYS days, as the "
        "bucket setting `object_lock` does",
    )
    parser.add_argument(
        "--key",
        default="password",
        metavar="SPEC",
        help="what opens the repository: password (default), aws-kms:KEY, "
        "kubernetes-secret:NAMESPACE/NAME/KEY",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    init = commands.add_parser("init")
    init.add_argument(
        "--like",
        metavar="LOCATION",
        help="share this repository's chunking (local:/DIR or s3:HOST:PORT/BUCKET),"
        " so `copy` between them moves only missing data",
    )
    backup = commands.add_parser("backup")
    backup.add_argument("source")
    backup.add_argument("--parent")
    restore = commands.add_parser("restore")
    restore.add_argument("snapshot")
    restore.add_argument("target")
    commands.add_parser("snapshots")
    checker = commands.add_parser("check")
    checker.add_argument("--read-data", action="store_true", help="read and verify every byte")
    commands.add_parser("repair-index")
    forgetter = commands.add_parser("forget")
    forgetter.add_argument("snapshots", nargs="+")
    commands.add_parser("prune")
    commands.add_parser("locks", help="the repository's locks: kind, owner, age, stale")
    unlocker = commands.add_parser(
        "unlock", help="remove stale locks (not refreshed for 30 minutes: their holder died)"
    )
    unlocker.add_argument("--stale", action="store_true", help="stale ones only (the default)")
    unlocker.add_argument(
        "--all", action="store_true", help="every lock: only when no mover or prune runs"
    )
    copier = commands.add_parser("copy", help="copy a snapshot into a repository made --like")
    copier.add_argument("snapshot")
    copier.add_argument("--to", required=True, metavar="LOCATION")
    rotator = commands.add_parser(
        "rotate-key",
        help="wrap the master key under another provider, then delete the old key files",
    )
    rotator.add_argument("--to", required=True, metavar="SPEC", help="the new key provider")
    commands.add_parser(
        "recover",
        help="after deletions or overwrites by someone holding the bucket's write keys: make "
        "each object's oldest (locked) version current again",
    )
    args = parser.parse_args(argv)
    try:
        print(json.dumps(run(args)))
    except (RepositoryError, ObjectStoreError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
