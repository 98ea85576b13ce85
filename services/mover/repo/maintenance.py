"""`forget` (drop snapshots) and `prune` (delete data no snapshot references), safe while
backups run (see `locks`). Prune deletes whole packs whose blobs are all unreferenced;
packs that are only partly unused are reported, not rewritten, in this version.

Order of writes, so a crash at any point loses nothing referenced: the new index is
written before the old index objects are deleted, and packs are deleted last. An
interrupted prune leaves at most unindexed packs (`check` warns, the next prune or
`repair-index` handles them).

Under object lock nothing locked is deleted: a locked snapshot is not forgotten (the caller
learns until when it is locked), a locked pack stays indexed for a later prune, and an
index object is locked no longer than the packs it names (so when a pack may be deleted,
so may every index object naming it). What is deleted is deleted with all its versions:
in a lock-enabled bucket a plain delete frees nothing.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.mover.repo.errors import RepositoryError
from services.mover.repo.format import BlobEntry, IndexDoc, PackEntry
from services.mover.repo.locks import Held, describe
from services.mover.repo.repository import Repository
from services.mover.repo.retention import known_until
from vessel.objectstore.base import ObjectLocked, Retain
from vessel.objectstore.lock import NO_LOCK, lock_policy, locked_until, purge

INDEX_PACKS_PER_DOC = 1000


class RepositoryBusy(RepositoryError):
    pass


@dataclass
class PruneReport:
    deleted_packs: int = 0
    deleted_bytes: int = 0
    partly_used_packs: int = 0
    kept_packs: int = 0
    locked_packs: int = 0
    """Unreferenced packs kept because their retention has not ended yet."""
    waited_seconds: float = 0.0
    waited_for: list[dict[str, object]] = field(default_factory=list)
    """The backup locks it waited on (`locks.describe`)."""
    notes: list[str] = field(default_factory=list)


def forget(repo: Repository, snapshot_ids: list[str]) -> dict[str, datetime]:
    """Delete snapshot documents; those still locked stay, returned with their date."""
    locked: dict[str, datetime] = {}
    for snapshot_id in snapshot_ids:
        try:
            purge(repo.store, repo.path("snapshots", snapshot_id))
        except ObjectLocked as exc:
            locked[snapshot_id] = exc.until
    return locked


def referenced_blobs(repo: Repository) -> set[bytes]:
    referenced: set[bytes] = set()
    stack = [doc.tree for doc in repo.snapshots().values()]
    while stack:
        tree_id = stack.pop()
        blob = bytes.fromhex(tree_id)
        if blob in referenced:
            continue
        referenced.add(blob)
        for node in repo.read_tree(tree_id).nodes:
            referenced.update(bytes.fromhex(c) for c in node.content)
            if node.subtree:
                stack.append(node.subtree)
    return referenced


def pack_contents(repo: Repository) -> dict[str, list[BlobEntry]]:
    """Every pack the index objects name, with every blob they list (duplicates included:
    the in-memory index keeps one location per blob, prune must see them all)."""
    contents: dict[str, list[BlobEntry]] = {}
    for name in repo.store.list(repo.path("index") + "/"):
        for entry in repo.load_doc("index", name.rsplit("/", 1)[1], IndexDoc).packs:
            contents[entry.pack] = entry.blobs
    return contents


def packs_to_keep(
    contents: dict[str, list[BlobEntry]],
    referenced: set[bytes],
    avoid: set[str] | frozenset[str] = frozenset(),
) -> set[str]:
    """A set of packs holding every referenced blob at least once, preferring packs outside
    `avoid` (those already announced for deletion)."""
    holders: dict[str, list[str]] = defaultdict(list)
    for pack, blobs in contents.items():
        for blob in blobs:
            if bytes.fromhex(blob.id) in referenced:
                holders[blob.id].append(pack)
    keep: set[str] = set()
    for packs in holders.values():
        if not keep.intersection(packs):
            keep.add(next((p for p in packs if p not in avoid), packs[0]))
    return keep


def prune(
    repo: Repository,
    *,
    wait_limit: float = 3600.0,
    poll: float = 1.0,
    say: Callable[[str], None] | None = None,
) -> PruneReport:
    """Delete the packs no snapshot uses, once the backups running now have ended; `say`
    hears, before the wait, which backup locks it waits on (owner, age)."""
    report = PruneReport()
    contents = pack_contents(repo)
    doomed = sorted(set(contents) - packs_to_keep(contents, referenced_blobs(repo)))
    held = Held(repo, "prune", doomed)
    try:
        others = held.others()
        if any(lock.kind == "prune" for lock in others):
            raise RepositoryBusy("another prune is running on this repository")
        backups = [lock for lock in others if lock.kind == "backup"]
        waiting = {lock.id for lock in backups}
        report.waited_for = [describe(lock) for lock in backups]
        if backups and say is not None:
            holders = ", ".join(
                f"{d['owner']} ({d['age_seconds']}s ago)" for d in report.waited_for
            )
            say(f"prune waits for {len(backups)} running backups; locks refreshed by: {holders}")
        started = time.monotonic()
        while waiting:
            if time.monotonic() - started > wait_limit:
                raise RepositoryBusy(
                    f"backups still running after {wait_limit:.0f}s: {', '.join(sorted(waiting))}"
                )
            time.sleep(poll)
            waiting &= {lock.id for lock in held.others()}
        report.waited_seconds = time.monotonic() - started
        # Count the snapshots and packs of the backups we waited for; delete only what was
        # announced, since only that is what later backups avoid.
        repo.load_index()
        contents = pack_contents(repo)
        referenced = referenced_blobs(repo)
        keep = packs_to_keep(contents, referenced, avoid=set(doomed))
        doomed = [p for p in doomed if p not in keep]
        free = [p for p in doomed if locked_until(repo.store, repo.pack_key(p)) is None]
        report.locked_packs = len(doomed) - len(free)
        doomed = free
        stuck = _rewrite_index(repo, {p: b for p, b in contents.items() if p not in doomed})
        for name in stuck:  # a retention ending later than we computed (clock skew)
            named = repo.load_doc("index", name.rsplit("/", 1)[1], IndexDoc).packs
            doomed = [p for p in doomed if p not in {e.pack for e in named}]
        for pack in doomed:
            try:
                purge(repo.store, repo.pack_key(pack))
            except ObjectLocked as exc:
                report.notes.append(f"{exc}; unindexed until the next prune or repair-index")
        repo.load_index()
        report.deleted_packs = len(doomed)
        report.deleted_bytes = sum(b.length for p in doomed for b in contents[p])
        report.kept_packs = len(contents) - len(doomed)
        report.partly_used_packs = sum(
            1
            for p, blobs in contents.items()
            if p not in doomed and any(bytes.fromhex(b.id) not in referenced for b in blobs)
        )
    finally:
        held.release()
    return report


def _rewrite_index(repo: Repository, contents: dict[str, list[BlobEntry]]) -> list[str]:
    """Write one index naming exactly `contents`, then drop the index objects it replaces
    (never ones written since the listing: those belong to running backups). Returns the
    old index objects still locked, which stay."""
    old_docs = repo.store.list(repo.path("index") + "/")
    names = sorted(contents)
    for start in range(0, len(names), INDEX_PACKS_PER_DOC):
        chunk = names[start : start + INDEX_PACKS_PER_DOC]
        repo.save_doc(
            "index",
            IndexDoc(packs=[PackEntry(pack=p, blobs=contents[p]) for p in chunk]),
            _index_retention(repo, chunk),
        )
    stuck = []
    for name in old_docs:
        try:
            purge(repo.store, name)
        except ObjectLocked:
            stuck.append(name)
    return stuck


def _index_retention(repo: Repository, packs: list[str]) -> Retain | None:
    """Locked until the earliest retention of the packs it names, unlocked when that has
    passed: an index object must never outlive a pack it names (see the module doc)."""
    policy = lock_policy(repo.store)
    if policy is None:
        return None
    until = min((known_until(repo, p) for p in packs), default=None)
    if until is None or until <= datetime.now(UTC):
        return NO_LOCK
    return Retain(policy.mode, until)
