"""`check` (structure, and with `read_data` every byte) and index repair from pack headers.

A check never stops at the first problem: it reports every error it finds, each naming
the object (and for snapshots the path) concerned.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import blake3

from services.mover.repo.errors import RepositoryError
from services.mover.repo.format import IndexDoc, PackEntry
from services.mover.repo.pack import read_header
from services.mover.repo.repository import Repository


@dataclass
class CheckReport:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    packs: int = 0
    blobs: int = 0
    snapshots: int = 0
    bytes_read: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


def stored_packs(repo: Repository) -> set[str]:
    return {key.rsplit("/", 1)[1] for key in repo.store.list(repo.path("data") + "/")}


def check(repo: Repository, *, read_data: bool = False) -> CheckReport:
    report = CheckReport()
    packs = stored_packs(repo)
    report.packs, report.blobs = len(packs), len(repo.index)
    indexed = {location.pack for location in repo.index.values()}
    for pack in sorted(indexed - packs):
        report.errors.append(f"pack {pack}: in the index but not in the bucket")
    for pack in sorted(packs - indexed):
        report.warnings.append(f"pack {pack}: not in any index (repair the index to use it)")
    _check_snapshots(repo, report)
    if read_data:
        for pack in sorted(packs & indexed):
            _read_pack(repo, pack, report)
    return report


def _check_snapshots(repo: Repository, report: CheckReport) -> None:
    seen: set[str] = set()
    for name in repo.store.list(repo.path("snapshots") + "/"):
        snapshot_id = name.rsplit("/", 1)[1]
        report.snapshots += 1
        try:
            doc = repo.snapshots_doc(snapshot_id)
        except RepositoryError as exc:
            report.errors.append(f"snapshot {snapshot_id}: {exc}")
            continue
        stack = [(doc.tree, "/")]
        while stack:
            tree_id, path = stack.pop()
            if tree_id in seen:
                continue
            seen.add(tree_id)
            try:
                tree = repo.read_tree(tree_id)
            except RepositoryError as exc:
                report.errors.append(f"snapshot {snapshot_id}: {path}: {exc}")
                continue
            for node in tree.nodes:
                if node.type == "dir" and node.subtree:
                    stack.append((node.subtree, f"{path}{node.name}/"))
                missing = [c for c in node.content if bytes.fromhex(c) not in repo.index]
                if missing:
                    report.errors.append(
                        f"snapshot {snapshot_id}: {path}{node.name}: "
                        f"{len(missing)} blobs missing, first {missing[0]}"
                    )


def _read_pack(repo: Repository, pack: str, report: CheckReport) -> None:
    try:
        data = repo.store.get_bytes(repo.pack_key(pack))
    except Exception as exc:  # any store error is a finding, not the end of the check
        report.errors.append(f"pack {pack}: cannot be read: {exc}")
        return
    report.bytes_read += len(data)
    if blake3.blake3(data).hexdigest() != pack:
        report.errors.append(f"pack {pack}: content does not match its id (corrupted)")
        return
    try:
        entries = read_header(repo.key, pack, data)
    except RepositoryError as exc:
        report.errors.append(str(exc))
        return
    for entry in entries:
        blob_id = bytes.fromhex(entry.id)
        location = repo.index.get(blob_id)
        if location is None or location.pack != pack:
            continue  # a duplicate stored in two packs; the index names the other one
        try:
            repo.decode_blob(blob_id, location, data[entry.offset : entry.offset + entry.length])
        except RepositoryError as exc:
            report.errors.append(str(exc))


def repair_index(repo: Repository) -> int:
    """Index every stored pack that no index names, from its own header; returns how many."""
    indexed = {location.pack for location in repo.index.values()}
    repaired = 0
    for pack in sorted(stored_packs(repo) - indexed):
        data = repo.store.get_bytes(repo.pack_key(pack))
        if blake3.blake3(data).hexdigest() != pack:
            continue  # a corrupted pack stays unindexed; check reports it
        entries = read_header(repo.key, pack, data)
        doc = IndexDoc(packs=[PackEntry(pack=pack, blobs=entries)])
        repo.save_index(doc)
        repaired += 1
    return repaired
