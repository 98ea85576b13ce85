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


def prune(repo: Repository, *, wait_limit: float = 3600.0, poll: float = 1.0) -> PruneReport:
    report = PruneReport()
    repo.load_index()
    by_pack: dict[str, set[bytes]] = defaultdict(set)
    for blob_id, location in repo.index.items():
        by_pack[location.pack].add(blob_id)
    referenced = referenced_blobs(repo)
    doomed = sorted(p for p, blobs in by_pack.items() if not blobs & referenced)
    report.partly_used_packs = sum(
        1 for blobs in by_pack.values() if blobs & referenced and blobs - referenced
    )
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
        repo.load_index()  # packs of the backups we waited for
        referenced = referenced_blobs(repo)  # snapshots of the backups we waited for
        doomed = [p for p in doomed if not by_pack[p] & referenced]
        _rewrite_index(repo, set(doomed))
        for pack in doomed:
            repo.store.delete(repo.pack_key(pack))
        report.deleted_packs = len(doomed)
        report.deleted_bytes = sum(
            repo.index[b].length for p in doomed for b in by_pack[p] if b in repo.index
        )
        for blob_id in [b for p in doomed for b in by_pack[p]]:
            repo.index.pop(blob_id, None)
        report.kept_packs = len(by_pack) - len(doomed)
    finally:
        held.release()
    return report


def _rewrite_index(repo: Repository, doomed: set[str]) -> None:
    old_docs = repo.store.list(repo.path("index") + "/")
    packs: dict[str, list[BlobEntry]] = defaultdict(list)
    for blob_id, loc in repo.index.items():
        if loc.pack not in doomed:
            packs[loc.pack].append(
                BlobEntry(
                    id=blob_id.hex(),
                    type=loc.type,
                    offset=loc.offset,
                    length=loc.length,
                    raw_length=loc.raw_length,
                    compressed=loc.compressed,
                )
            )
    names = sorted(packs)
    for start in range(0, len(names), INDEX_PACKS_PER_DOC):
        chunk = names[start : start + INDEX_PACKS_PER_DOC]
        repo.save_doc("index", IndexDoc(packs=[PackEntry(pack=p, blobs=packs[p]) for p in chunk]))
    for name in old_docs:  # index objects written since the listing are left alone
        repo.store.delete(name)
