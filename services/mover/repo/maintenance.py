"""`forget` (drop snapshots) and `prune` (delete data no snapshot references), safe while
backups run (see `locks`). Prune deletes whole packs whose blobs are all unreferenced;
packs that are only partly unused are reported, not rewritten, in this version.

Order of writes, so a crash at any point loses nothing referenced: the new index is
written before the old index objects are deleted, and packs are deleted last. An
interrupted prune leaves at most unindexed packs (`check` warns, the next prune or
`repair-index` handles them).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field

from services.mover.repo.errors import RepositoryError
from services.mover.repo.format import BlobEntry, IndexDoc, PackEntry
from services.mover.repo.locks import Held
from services.mover.repo.repository import Repository

INDEX_PACKS_PER_DOC = 1000


class RepositoryBusy(RepositoryError):
    pass


@dataclass
class PruneReport:
    deleted_packs: int = 0
    deleted_bytes: int = 0
    partly_used_packs: int = 0
    kept_packs: int = 0
    waited_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def forget(repo: Repository, snapshot_ids: list[str]) -> None:
    for snapshot_id in snapshot_ids:
        repo.store.delete(repo.path("snapshots", snapshot_id))


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


def prune(repo: Repository, *, wait_limit: float = 3600.0, poll: float = 1.0) -> PruneReport:
    report = PruneReport()
    contents = pack_contents(repo)
    doomed = sorted(set(contents) - packs_to_keep(contents, referenced_blobs(repo)))
    held = Held(repo, "prune", doomed)
    try:
        others = held.others()
        if any(lock.kind == "prune" for lock in others):
            raise RepositoryBusy("another prune is running on this repository")
        waiting = {lock.id for lock in others if lock.kind == "backup"}
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
        _rewrite_index(repo, {p: b for p, b in contents.items() if p not in doomed})
        for pack in doomed:
            repo.store.delete(repo.pack_key(pack))
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


def _rewrite_index(repo: Repository, contents: dict[str, list[BlobEntry]]) -> None:
    """Write one index naming exactly `contents`, then drop the index objects it replaces
    (never ones written since the listing: those belong to running backups)."""
    old_docs = repo.store.list(repo.path("index") + "/")
    names = sorted(contents)
    for start in range(0, len(names), INDEX_PACKS_PER_DOC):
        chunk = names[start : start + INDEX_PACKS_PER_DOC]
        repo.save_doc(
            "index", IndexDoc(packs=[PackEntry(pack=p, blobs=contents[p]) for p in chunk])
        )
    for name in old_docs:
        repo.store.delete(name)
