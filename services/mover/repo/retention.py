"""Object lock and snapshots: everything a snapshot references stays locked as long as it.

A backup writes its packs, index objects and snapshot with one retention (the writer's).
An incremental also references blobs in older packs, locked for less time; before its
snapshot is written, every pack the snapshot references whose retention falls short is
extended, to the snapshot's date plus `LockPolicy.ahead` (so a pack that every backup
reuses is extended a few times per retention period, not by every backup).

The number of requests stays bounded by remembering, per process and repository, what was
read or set: `Repository.pack_until` (a pack's retention; a pack first seen costs one
HEAD) and `Repository.tree_until` (a tree every pack under which stays locked at least
until that date: unchanged directories are not even read again until that date is
short). Retentions only grow, so remembered dates are lower bounds, never wrong.
"""

from __future__ import annotations

from datetime import UTC, datetime

from services.mover.repo.errors import CorruptObject
from services.mover.repo.format import SnapshotDoc
from services.mover.repo.repository import Repository
from vessel.objectstore.base import Retain
from vessel.objectstore.lock import lock_policy

NEVER = datetime.min.replace(tzinfo=UTC)


def save_snapshot(repo: Repository, doc: SnapshotDoc, retain: Retain | None) -> str:
    """Store a snapshot document, first making every pack it references stay locked at
    least as long as it (when `retain` is set)."""
    if retain is not None:
        cover(repo, doc.tree, retain)
    return repo.save_doc("snapshots", doc, retain)


def cover(repo: Repository, root: str, retain: Retain) -> int:
    """Extend every pack under tree `root` locked for less than `retain.until`; returns
    how many were extended."""
    needed = retain.until
    trees: dict[str, tuple[set[str], list[str]]] = {}
    stack = [root]
    while stack:
        tree_id = stack.pop()
        if tree_id in trees or repo.tree_until.get(tree_id, NEVER) >= needed:
            continue
        tree = repo.read_tree(tree_id)
        blobs = [tree_id, *(c for node in tree.nodes for c in node.content)]
        subtrees = [node.subtree for node in tree.nodes if node.subtree]
        trees[tree_id] = ({_pack(repo, b) for b in blobs}, subtrees)
        stack.extend(subtrees)
    policy = lock_policy(repo.store)
    target = Retain(retain.mode, needed + policy.ahead if policy is not None else needed)
    extended = 0
    for pack in sorted(set().union(*(packs for packs, _ in trees.values()))):
        if known_until(repo, pack) < needed:
            repo.store.extend_retention(repo.pack_key(pack), target)
            repo.pack_until[pack] = target.until
            extended += 1
    _remember(repo, trees)
    return extended


def _pack(repo: Repository, blob: str) -> str:
    location = repo.index.get(bytes.fromhex(blob))
    if location is None:
        raise CorruptObject(f"blob {blob} is not in any index")
    return location.pack


def known_until(repo: Repository, pack: str) -> datetime:
    until = repo.pack_until.get(pack)
    if until is None:
        current = repo.store.retention(repo.pack_key(pack))
        until = current.until if current is not None else NEVER
        repo.pack_until[pack] = until
    return until


def _remember(repo: Repository, trees: dict[str, tuple[set[str], list[str]]]) -> None:
    """Each walked tree's date: the earliest retention of any pack under it (post-order,
    without recursion: directory depth is not bounded by Python's stack)."""
    dates: dict[str, datetime] = {}
    for root in trees:
        stack: list[tuple[str, bool]] = [(root, False)]
        while stack:
            tree_id, ready = stack.pop()
            if tree_id in dates:
                continue
            packs, subtrees = trees[tree_id]
            if not ready:
                stack.append((tree_id, True))
                stack.extend((s, False) for s in subtrees if s in trees and s not in dates)
                continue
            found = [known_until(repo, p) for p in packs]
            found += [dates.get(s) or repo.tree_until.get(s, NEVER) for s in subtrees]
            dates[tree_id] = min(found)
    repo.tree_until.update(dates)
